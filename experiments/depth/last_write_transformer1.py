"""Last-Write control x transformer, 1 layer: train at depths 1..16, evaluate beyond.

Command: python -m rcfam_jax.tasks.sweep --only=last_write_transformer1
Expected (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md): last-step accuracy 100.0% at depth 16, 70.7%
at depth 64; cliff 48; 1000 steps x 128, 5 s of training.
"""
from experiments.depth import base


def get_config(arg=None):
  return base.make_config("last_write", "transformer", 1, arg)
