"""Withheld Maze 4x4 x lstm, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_lstm1
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 100.0% at depth 16, 90.2%
at depth 64; cliff >64; 50000 steps x 256, 97 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "lstm", 1, arg)
