"""Compilers corpus at trained sequence length 2 (see experiments/compilers.py).

Command: make train EXP=compilers_2
Hardware: one NVIDIA H200.
Expected: not run yet on the H200 (docs/SCALING.md ran T = 16, 128, 512, 2048).
"""

from experiments import compilers


def get_config(arg=None):
  return compilers.get_config(arg, seq_len=2)
