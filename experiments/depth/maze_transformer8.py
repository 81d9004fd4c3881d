"""Withheld Maze 4x4 x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=maze_transformer8
Previous H200 run (batch 128, hidden 128, mask-coded walls):
last-step accuracy 77% at depth 16, 21% at depth 64; cliff 16; 8000 steps, ~34 s.
Now batch 256, 8000 steps (est. ~55 s): pending.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", "transformer", 8, arg)
