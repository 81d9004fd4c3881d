"""Withheld Maze 4x4 x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_transformer8
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 91.4% at depth 16, 23.8%
at depth 64; cliff 20; 8000 steps x 256, 43 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "transformer", 8, arg)
