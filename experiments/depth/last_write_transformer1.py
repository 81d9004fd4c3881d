"""Last-Write control x transformer, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=last_write_transformer1
Expected (H200, measured): last-step accuracy 100% at depth 16, 70% at depth 64;
cliff (first depth < 90%) 48; 3000 steps, ~7 s (now 1000).
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("last_write", "transformer", 1, arg)
