"""Compilers corpus at trained sequence length 512 (see experiments/compilers.py).

Command: make train EXP=compilers_512
Hardware: one NVIDIA H200.
Expected (H200, 2026-11-28, `:minutes=21,batch=8` run of docs/SCALING.md): 1,535 frames/s
  (median); held-out validation loss 5.076 at step 411 (21-min budget, 1,127 s of
  training steps; ln 4096 = 8.32 at start).
  The loss was measured with the Muon scale of that date, transposed against the author's
  (docs/RESULTS.md); the current rule gives other losses. Carried state.
"""

from experiments import compilers


def get_config(arg=None):
  return compilers.get_config(arg, seq_len=512)
