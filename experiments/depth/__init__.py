"""Depth-benchmark configs, one module per task family: `get_config(arg) -> ConfigDict`.

A run is (NAME, FAMILY, ARG): experiments/depth/FAMILY.py:ARG, whose config is named NAME
(<label>_<model><layers>[_<pos>], the name in results.json, the tables and the sweep's --only).
SWEEP is what `python -m rcfam_jax.research.tasks.sweep` runs by default, in this order (sized
for one short H200 run in the `full` preset: docs/DEPTH_BENCHMARK.md); OPTIONAL (the S3
composition task) runs with --optional or --only; ABLATION (the Transformer's position
encodings, and Transformer and Mamba-2 at 1, 2, 4 layers where SWEEP and OPTIONAL have 1 and 8:
the cliff against layers, and an 8-layer Transformer on Last-Write) runs with --ablation or
--only. VARIABLE_ONLY (FRJT-16) is left out of a fixed-protocol sweep unless named in --only:
no model fits its training range at the `full` budget (docs/DEPTH_BENCHMARK.md), and its fixed
rows would be 2,048 tokens, four times FRJT's 512, at which FRJT's 8-layer Transformer already
takes 46 ms a step on an H200.
"""

from __future__ import annotations

SWEEP = (
  ("frjt_lstm1", "frjt", "model=lstm,layers=1"),
  ("frjt_transformer1", "frjt", "model=transformer,layers=1"),
  ("frjt_transformer2", "frjt", "model=transformer,layers=2"),
  ("frjt_transformer4", "frjt", "model=transformer,layers=4"),
  ("frjt_transformer8", "frjt", "model=transformer,layers=8"),
  ("frjt_mamba1", "frjt", "model=mamba,layers=1"),
  ("frjt_mamba8", "frjt", "model=mamba,layers=8"),
  ("maze_lstm1", "maze", "model=lstm,layers=1"),
  ("maze_transformer8", "maze", "model=transformer,layers=8"),
  ("maze_mamba8", "maze", "model=mamba,layers=8"),
  ("last_write_lstm1", "last_write", "model=lstm,layers=1"),
  ("last_write_transformer1", "last_write", "model=transformer,layers=1"),
  ("last_write_mamba8", "last_write", "model=mamba,layers=8"),
  ("frjt16_lstm1", "frjt", "jump=16,model=lstm,layers=1"),
  ("frjt16_transformer8", "frjt", "jump=16,model=transformer,layers=8"),
  ("frjt16_mamba8", "frjt", "jump=16,model=mamba,layers=8"),
  ("maze_transformer1", "maze", "model=transformer,layers=1"),
)
OPTIONAL = (
  ("perm_lstm1", "perm", "model=lstm,layers=1"),
  ("perm_transformer8", "perm", "model=transformer,layers=8"),
  ("perm_mamba8", "perm", "model=mamba,layers=8"),
)
ABLATION = (
  *(
    (f"{fam}_transformer8_{pos}", fam, f"model=transformer,layers=8,pos={pos}")
    for fam in ("frjt", "maze", "perm")
    for pos in ("none", "alibi")
  ),
  *(
    (f"{fam}_{kind}{layers}", fam, f"model={kind},layers={layers}")
    for fam in ("maze", "perm")
    for kind in ("transformer", "mamba")
    for layers in (1, 2, 4)
    if f"{fam}_{kind}{layers}" != "maze_transformer1"
  ),
  ("last_write_transformer8", "last_write", "model=transformer,layers=8"),
)
VARIABLE_ONLY = ("frjt16_lstm1", "frjt16_transformer8", "frjt16_mamba8")
RUNS = {name: (family, arg) for name, family, arg in SWEEP + OPTIONAL + ABLATION}


def spec(name: str, arg: str | None = None) -> str:
  """Run `name` -> 'experiments.depth.FAMILY:ARG[,arg]' for rcfam_jax.experiment.load."""
  if name not in RUNS:
    raise ValueError(f"unknown depth run {name!r}; known: {list(RUNS)}")
  family, own = RUNS[name]
  return f"experiments.depth.{family}:" + ",".join(filter(None, [own, arg]))
