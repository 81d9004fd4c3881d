"""S3 composition x lstm, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=perm_lstm1
Expected: not yet run on the H200 (optional, outside the default sweep).
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", "lstm", 1, arg)
