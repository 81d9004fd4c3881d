"""FRJT (max jump 4) x mamba, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_mamba1
Expected (H200, measured): last-step accuracy 75% at depth 16, 78% at depth 64;
cliff (first depth < 90%) 2; 3000 steps, ~10 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "mamba", 1, arg)
