"""Compilers corpus at trained sequence length 16 (see experiments/compilers.py).

Command: make train EXP=compilers_16
Hardware: one NVIDIA H200.
Expected (H200, 2026-11-28, `:minutes=7,batch=8` run of docs/SCALING.md): 1,403 frames/s
  (median); held-out validation loss 3.996 at step 3,405 (7-min budget, 373 s of
  training steps; ln 4096 = 8.32 at start).
  The loss was measured with the Muon scale of that date, transposed against the author's
  (docs/RESULTS.md); the current rule gives other losses. Carried state.
"""

from experiments import compilers


def get_config(arg=None):
  return compilers.get_config(arg, seq_len=16)
