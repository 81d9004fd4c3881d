"""Forward-Referencing Jumps (FRJT) x one model: train at depths 1..16, evaluate beyond.

Arg: model=lstm|transformer|mamba and layers=L (default lstm, 1); jump=4|16, the maximum forward
offset (4: run label `frjt`, the default; 16: `frjt16`); base.py's preset, steps, lr, seed,
d_model, batch. E.g. experiments/depth/frjt.py:jump=16,model=transformer,layers=8,preset=cpu.

Command: python -m rcfam_jax.research.tasks.sweep --only=NAME runs this file with ARG (the pairs
are in experiments/depth/__init__.py). Expected, preset full: last-step accuracy at depth 16 / 64;
cliff = first depth below 90%; training steps (x batch), seconds.

jump=4 (H200, measured):
  NAME               ARG                         depth 16 / 64  cliff          training
  frjt_lstm1         model=lstm,layers=1         100% / 100%    none up to 64  3000 steps, ~10 s
  frjt_transformer1  model=transformer,layers=1  64% / 42%      2              3000 steps, ~11 s
  frjt_transformer2  model=transformer,layers=2  82% / 44%      4              3000 steps, ~10 s
  frjt_transformer4  model=transformer,layers=4  98% / 38%      24             3000 steps, ~11 s
  frjt_transformer8  model=transformer,layers=8  100% / 38%     32             3000 steps, ~17 s
  frjt_mamba1        model=mamba,layers=1        75% / 78%      2              3000 steps, ~10 s
  frjt_mamba8        model=mamba,layers=8        99% / 100%     none up to 64  3000 steps, ~29 s
jump=16 (H200, 2026-11-28, docs/DEPTH_BENCHMARK.md):
  NAME                 ARG                                 depth 16 / 64  cliff  training
  frjt16_lstm1         jump=16,model=lstm,layers=1         61.3% / 49.2%  4      3000 x 128, 19 s
  frjt16_transformer8  jump=16,model=transformer,layers=8  72.1% / 25.4%  8      3000 x 128, 58 s
  frjt16_mamba8        jump=16,model=mamba,layers=8        39.6% / 40.8%  4      3000 x 128, 72 s
"""

from experiments.depth import base

LABELS = {4: "frjt", 16: "frjt16"}


def get_config(arg=None):
  a = base.parse(arg, jump=4)
  return base.make_config(base.choose(a, "jump", LABELS), a)
