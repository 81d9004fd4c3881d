"""S3 composition x mamba, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=perm_mamba8
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 99.0% at depth 16, 16.2%
at depth 64; cliff 20; 3000 steps x 128, 16 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", "mamba", 8, arg)
