"""Last-Write control x mamba, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=last_write_mamba8
Expected (H200, measured): last-step accuracy 100% at depth 16, 100% at depth 64;
cliff (first depth < 90%) none up to 64; 3000 steps, ~28 s (now 1000).
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("last_write", "mamba", 8, arg)
