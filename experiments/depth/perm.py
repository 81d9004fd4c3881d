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
protocol=fixed (every row 128 tokens; H200, 2026-12-02, `make depth-bench`,
docs/DEPTH_BENCHMARK.md; 2000 x 128; Transformers in bfloat16):
  NAME                     ARG                                   depth 16 / 64     cliff
  perm_lstm1               model=lstm,layers=1                   100.0% / 100.0%   128
  perm_transformer8        model=transformer,layers=8            23.8% / 14.1%     8
  perm_mamba8              model=mamba,layers=8                  27.0% / 14.3%     8
  perm_transformer8_none   model=transformer,layers=8,pos=none   16.0% / 16.8%     8
  perm_transformer8_alibi  model=transformer,layers=8,pos=alibi  17.2% / 16.0%     8
  perm_transformer1        model=transformer,layers=1            18.2% / 16.4%     2
  perm_transformer2        model=transformer,layers=2            16.6% / 15.0%     4
  perm_transformer4        model=transformer,layers=4            17.2% / 14.8%     8
  perm_mamba1              model=mamba,layers=1                  16.4% / 15.4%     4
  perm_mamba2              model=mamba,layers=2                  18.0% / 17.0%     4
  perm_mamba4              model=mamba,layers=4                  23.4% / 19.7%     8
"""

from experiments.depth import base


def get_config(arg=None):
  return base.make_config("perm", base.parse(arg))
