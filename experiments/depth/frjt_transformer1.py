"""FRJT (max jump 4) x transformer, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_transformer1
Expected (H200, measured): last-step accuracy 64% at depth 16, 42% at depth 64;
cliff (first depth < 90%) 2; 3000 steps, ~11 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "transformer", 1, arg)
