"""S3 composition (optional in the sweep) x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); base.py's preset, steps, lr,
seed, d_model, batch, protocol=variable|fixed and length (the fixed protocol's row length L).
E.g. experiments/depth/perm.py:model=mamba,layers=8,preset=cpu, or
protocol=fixed,length=200 (every row, training and evaluation, 200 tokens).

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%; training steps x batch, seconds.

H200, 2026-11-28, variable protocol, docs/DEPTH_BENCHMARK.md:
  NAME               ARG                         depth 16 / 64    cliff  training
  perm_lstm1         model=lstm,layers=1         100.0% / 100.0%  >64    3000 x 128, 8 s
  perm_transformer8  model=transformer,layers=8  73.2% / 15.8%    2      3000 x 128, 13 s
  perm_mamba8        model=mamba,layers=8        99.0% / 16.2%    20     3000 x 128, 16 s
protocol=fixed (every row 128 tokens; H200, 2026-12-01, docs/DEPTH_BENCHMARK.md; 3000 x 128):
  perm_lstm1         model=lstm,layers=1         100.0% / 99.8%   128 (95.7% at 96)
  perm_transformer8  model=transformer,layers=8  29.3% / 17.8%    8
  perm_mamba8        model=mamba,layers=8        24.2% / 18.0%    8
"""

from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", base.parse(arg))
