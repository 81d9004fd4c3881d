"""Last-Write control x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); base.py's preset, steps, lr,
seed, d_model, batch. E.g. experiments/depth/last_write.py:model=transformer,layers=1,preset=cpu.

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%; training steps x batch, seconds.

H200, 2026-11-28, docs/DEPTH_BENCHMARK.md:
  NAME                     ARG                         depth 16 / 64    cliff  training
  last_write_lstm1         model=lstm,layers=1         100.0% / 100.0%  >64    1000 x 128, 5 s
  last_write_transformer1  model=transformer,layers=1  100.0% / 70.7%   48     1000 x 128, 5 s
  last_write_mamba8        model=mamba,layers=8        100.0% / 100.0%  >64    1000 x 128, 11 s
"""

from experiments.depth import base


def get_config(arg=None):
  return base.make_config("last_write", base.parse(arg))
