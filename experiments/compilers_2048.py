"""Compilers corpus at trained sequence length 2048 (see experiments/compilers.py).

Command: make train EXP=compilers_2048
Hardware: one NVIDIA H200.
Expected (H200, 2026-11-28, `:minutes=16,batch=8` run of docs/SCALING.md): 1,570 frames/s
  (median); held-out validation loss 7.006 at step 78 (16-min budget, 830 s of
  training steps; ln 4096 = 8.32 at start).
  The loss was measured with the Muon scale of that date, transposed against the author's
  (docs/RESULTS.md); the current rule gives other losses. Carried state.
"""

from experiments import compilers


def get_config(arg=None):
  return compilers.get_config(arg, seq_len=2048)
