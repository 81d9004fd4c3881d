"""S3 composition x mamba, 8 layers: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=perm_mamba8
Expected: not yet run on the H200 (optional, outside the default sweep).
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", "mamba", 8, arg)
