"""Last-Write control x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); base.py's preset, steps, lr,
seed, d_model, batch, protocol=variable|fixed and length (the fixed protocol's row length L).
E.g. experiments/depth/last_write.py:model=transformer,layers=1,preset=cpu, or
protocol=fixed,length=200 (every row, training and evaluation, 200 tokens).

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%.

H200, 2026-11-28, variable protocol, docs/DEPTH_BENCHMARK.md (1000 x 128, 3-11 s each):
  NAME                     ARG                         depth 16 / 64    cliff
  last_write_lstm1         model=lstm,layers=1         100.0% / 100.0%  >64
  last_write_transformer1  model=transformer,layers=1  100.0% / 70.7%   48
  last_write_mamba8        model=mamba,layers=8        100.0% / 100.0%  >64
protocol=fixed (every row 512 tokens; H200, 2026-12-02, `make depth-bench`,
docs/DEPTH_BENCHMARK.md; 1000 x 128; Transformers in bfloat16):
  NAME                     ARG                         depth 16 / 64     cliff
  last_write_lstm1         model=lstm,layers=1         100.0% / 100.0%   >128
  last_write_transformer1  model=transformer,layers=1  99.4% / 99.4%     >128
  last_write_mamba8        model=mamba,layers=8        100.0% / 100.0%   >128
  last_write_transformer8  model=transformer,layers=8  100.0% / 100.0%   >128
"""

from experiments.depth import base


def get_config(arg=None):
  return base.make_config("last_write", base.parse(arg))
