"""S3 composition x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=perm_transformer8
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 73.2% at depth 16, 15.8%
at depth 64; cliff 2; 3000 steps x 128, 13 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", "transformer", 8, arg)
