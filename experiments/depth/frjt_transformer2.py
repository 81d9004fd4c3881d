"""FRJT (max jump 4) x transformer, 2 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_transformer2
Expected (H200, measured): last-step accuracy 82% at depth 16, 44% at depth 64;
cliff (first depth < 90%) 4; 3000 steps, ~10 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "transformer", 2, arg)
