"""FRJT (max jump 4) x mamba, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=frjt_mamba8
Expected (H200, measured): last-step accuracy 99% at depth 16, 100% at depth 64;
cliff (first depth < 90%) none up to 64; 3000 steps, ~29 s.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("frjt", "mamba", 8, arg)
