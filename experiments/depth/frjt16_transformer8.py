"""FRJT (max jump 16) x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt16_transformer8
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 72.1% at depth 16, 25.4%
at depth 64; cliff 8; 3000 steps x 128, 58 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt16", "transformer", 8, arg)
