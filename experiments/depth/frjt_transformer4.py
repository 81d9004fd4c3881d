"""FRJT (max jump 4) x transformer, 4 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_transformer4
Expected (H200, measured): last-step accuracy 98% at depth 16, 38% at depth 64;
cliff (first depth < 90%) 24; 3000 steps, ~11 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "transformer", 4, arg)
