"""Sequence-length scaling study (docs/SCALING.md).

`sweep` trains one run per trained sequence length T; `fit` reads the runs back and fits the
power law log L = log A - alpha log T per evaluation step, finds wall-time crossovers and
compares early- and late-position losses; `report` writes plots, report.md and fit.json.

  python -m rcfam_jax.research.scaling run --exp compilers --seq-lens 2,16,128,512,2048 --root DIR
  python -m rcfam_jax.research.scaling fit DIR/T* --out DIR/fit
"""
