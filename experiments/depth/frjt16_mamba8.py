"""FRJT (max jump 16) x mamba, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt16_mamba8
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 39.6% at depth 16, 40.8%
at depth 64; cliff 4; 3000 steps x 128, 72 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt16", "mamba", 8, arg)
