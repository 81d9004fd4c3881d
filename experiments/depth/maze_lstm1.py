"""Withheld Maze 4x4 x lstm, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_lstm1
Previous H200 run (batch 128, hidden 128, mask-coded walls):
last-step accuracy 70% at depth 16, 27% at depth 64; cliff 8; 8000 steps, ~17 s.
Now hidden 256, batch 256, 50000 steps (est. ~2 min): pending.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "lstm", 1, arg)
