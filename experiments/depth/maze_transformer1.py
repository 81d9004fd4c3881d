"""Withheld Maze 4x4 x transformer, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_transformer1
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 44.3% at depth 16, 16.2%
at depth 64; cliff 4; 5000 steps x 256, 12 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "transformer", 1, arg)
