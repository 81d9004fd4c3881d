"""Withheld Maze 4x4 x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); base.py's preset, steps, lr,
seed, d_model, batch, protocol=variable|fixed and length (the fixed protocol's row length L).
E.g. experiments/depth/maze.py:model=mamba,layers=8,preset=cpu, or
protocol=fixed,length=200 (every row, training and evaluation, 200 tokens).

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%; training steps x batch, seconds.

H200, 2026-11-28, variable protocol, docs/DEPTH_BENCHMARK.md:
  NAME               ARG                         depth 16 / 64   cliff  training
  maze_lstm1         model=lstm,layers=1         100.0% / 90.2%  >64    50000 x 256, 97 s
  maze_transformer8  model=transformer,layers=8  91.4% / 23.8%   20     8000 x 256, 43 s
  maze_mamba8        model=mamba,layers=8        94.7% / 35.9%   20     8000 x 256, 84 s
  maze_transformer1  model=transformer,layers=1  44.3% / 16.2%   4      5000 x 256, 12 s
protocol=fixed (every row 145 tokens; H200, 2026-12-02, `make depth-bench`,
docs/DEPTH_BENCHMARK.md; 2500 x 256, the LSTM 15000 x 256; Transformers in bfloat16):
  NAME                     ARG                                   depth 16 / 64     cliff
  maze_lstm1               model=lstm,layers=1                   99.8% / 53.3%     48
  maze_transformer8        model=transformer,layers=8            64.3% / 28.3%     8
  maze_mamba8              model=mamba,layers=8                  69.5% / 27.1%     8
  maze_transformer1        model=transformer,layers=1            30.7% / 14.8%     2
  maze_transformer8_none   model=transformer,layers=8,pos=none   67.4% / 16.0%     12
  maze_transformer8_alibi  model=transformer,layers=8,pos=alibi  66.4% / 28.7%     8
  maze_transformer2        model=transformer,layers=2            46.1% / 21.5%     4
  maze_transformer4        model=transformer,layers=4            57.2% / 28.3%     8
  maze_mamba1              model=mamba,layers=1                  33.0% / 19.9%     1
  maze_mamba2              model=mamba,layers=2                  44.9% / 23.0%     4
  maze_mamba4              model=mamba,layers=4                  57.6% / 25.4%     8
"""

from experiments.depth import base


def get_config(arg=None):
  return base.make_config("maze", base.parse(arg))
