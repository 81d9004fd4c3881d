"""Forward-Referencing Jumps (FRJT) x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); jump=4|16, the maximum forward
offset (4: run label `frjt`, the default; 16: `frjt16`); base.py's preset, steps, lr, seed,
d_model, batch, protocol=variable|fixed and length (the fixed protocol's row length L). E.g.
experiments/depth/frjt.py:jump=16,model=transformer,layers=8,preset=cpu, or
experiments/depth/frjt.py:model=transformer,layers=8,protocol=fixed (every row 512 tokens).

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%; training steps (x batch), seconds.

jump=4 (H200, 2026-11-28, variable protocol, docs/DEPTH_BENCHMARK.md; 3000 x 128, 7-29 s each):
  NAME               ARG                         depth 16 / 64   cliff
  frjt_lstm1         model=lstm,layers=1         100.0% / 100.0%  none up to 64
  frjt_transformer1  model=transformer,layers=1  63.9% / 42.0%    2
  frjt_transformer2  model=transformer,layers=2  81.8% / 44.3%    4
  frjt_transformer4  model=transformer,layers=4  97.7% / 38.1%    24
  frjt_transformer8  model=transformer,layers=8  99.4% / 37.7%    32
  frjt_mamba1        model=mamba,layers=1        74.6% / 77.7%    2
  frjt_mamba8        model=mamba,layers=8        99.4% / 99.6%    none up to 64
jump=16 (H200, 2026-11-28, variable protocol, docs/DEPTH_BENCHMARK.md):
  NAME                 ARG                                 depth 16 / 64  cliff  training
  frjt16_lstm1         jump=16,model=lstm,layers=1         61.3% / 49.2%  4      3000 x 128, 19 s
  frjt16_transformer8  jump=16,model=transformer,layers=8  72.1% / 25.4%  8      3000 x 128, 58 s
  frjt16_mamba8        jump=16,model=mamba,layers=8        39.6% / 40.8%  4      3000 x 128, 72 s
jump=4, protocol=fixed (every row 512 tokens; H200, 2026-12-02, `make depth-bench`,
docs/DEPTH_BENCHMARK.md; 2000 x 128; Transformers in bfloat16):
  NAME                     ARG                                   depth 16 / 64     cliff
  frjt_lstm1               model=lstm,layers=1                   100.0% / 99.8%    >128
  frjt_transformer1        model=transformer,layers=1            33.2% / 36.9%     1
  frjt_transformer2        model=transformer,layers=2            51.4% / 39.8%     2
  frjt_transformer4        model=transformer,layers=4            74.2% / 43.0%     2
  frjt_transformer8        model=transformer,layers=8            85.0% / 36.5%     8
  frjt_mamba1              model=mamba,layers=1                  35.9% / 41.6%     1
  frjt_mamba8              model=mamba,layers=8                  88.9% / 82.6%     16
  frjt_transformer8_none   model=transformer,layers=8,pos=none   50.4% / 27.0%     4
  frjt_transformer8_alibi  model=transformer,layers=8,pos=alibi  78.3% / 42.6%     4
"""

from experiments.depth import base

LABELS = {4: "frjt", 16: "frjt16"}


def get_config(arg=None):
  a = base.parse(arg, jump=4)
  return base.make_config(base.choose(a, "jump", LABELS), a)
