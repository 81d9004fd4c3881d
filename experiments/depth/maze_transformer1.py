"""Withheld Maze 4x4 x transformer, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_transformer1
Previous H200 run (batch 128, hidden 128, mask-coded walls):
last-step accuracy 31% at depth 16, 19% at depth 64; cliff 1; 3000 steps, ~13 s.
Now batch 256, 5000 steps (est. ~20 s): pending.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "transformer", 1, arg)
