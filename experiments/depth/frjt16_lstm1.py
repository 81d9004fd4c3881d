"""FRJT (max jump 16) x lstm, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt16_lstm1
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 61.3% at depth 16, 49.2%
at depth 64; cliff 4; 3000 steps x 128, 19 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt16", "lstm", 1, arg)
