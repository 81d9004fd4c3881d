"""FRJT (max jump 4) x transformer, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_transformer8
Expected (H200, measured): last-step accuracy 100% at depth 16, 38% at depth 64;
cliff (first depth < 90%) 32; 3000 steps, ~17 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "transformer", 8, arg)
