"""FRJT (max jump 16) x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt16_transformer8
Expected: pending the H200 run (docs/DEPTH_BENCHMARK.md).
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt16", "transformer", 8, arg)
