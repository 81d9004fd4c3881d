"""Compilers corpus at trained sequence length 2048 (see experiments/compilers.py).

Command: make train EXP=compilers_2048
Hardware: one NVIDIA H200.
Expected: not measured yet; docs/RESULTS.md records each run.
"""
from experiments import compilers


def get_config(arg=None):
  return compilers.get_config(arg, seq_len=2048)
