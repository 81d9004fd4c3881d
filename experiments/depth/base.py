"""Shared builder for the depth-benchmark configs: experiments/depth/<task>_<kind><L>.py.

Each config file is `get_config(arg)` -> ConfigDict with `task`, `model` and `run` sections;
`arg` is a big_vision-style string "preset=full,steps=4000,seed=1". Presets:
  full:  the H200 sweep (d_model 128, 3000 steps (maze 8000) of batch 128, eval depths 1..64);
Training depths are 1..16 (FRJT's training maximum in the paper's setup) for every task.
  cpu:   a small real run on a 2-core CPU (d_model 64, 600 steps of batch 32, depths 1..32);
  quick: a smoke test (d_model 16, 3 steps), used by tests/tasks_sweep_test.py.
"""
from __future__ import annotations

import ml_collections

from experiments.common import parse_arg

PRESETS = {
    "full": dict(train_max_depth=16, d_model=128, head_dim=32, d_state=32, steps=3000,
                 batch=128, warmup=200, eval_depths=(1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64),
                 eval_per_depth=512, eval_batch=512, log_every=500),
    "cpu": dict(train_max_depth=16, d_model=64, head_dim=16, d_state=16, steps=600, batch=32,
                warmup=50, eval_depths=(1, 2, 4, 8, 12, 16, 24, 32), eval_per_depth=128,
                eval_batch=128, log_every=100),
    "quick": dict(train_max_depth=3, d_model=16, head_dim=8, d_state=8, unroll=1, steps=3, batch=4,
                  warmup=1, eval_depths=(1, 3, 5), eval_per_depth=4, eval_batch=4, log_every=1),
}
LR = {"lstm": 3e-3, "transformer": 1e-3, "mamba": 2e-3}
# Benchmark variants: label -> (task name, task fields, full-preset steps).
TASKS = {
    "frjt": ("frjt", dict(max_jump=4, n_payloads=8), 3000),
    # Longer jumps: pointer chains take ~8x longer to coalesce (docs/DEPTH_BENCHMARK.md).
    "frjt16": ("frjt", dict(max_jump=16, n_payloads=8), 3000),
    "maze": ("maze", dict(width=4, height=4), 8000),  # still improving at 3000 steps on H200
    "last_write": ("last_write", dict(max_gap=4, n_payloads=8), 3000),
}


def make_config(label: str, kind: str, layers: int, arg: str | None = None):
  a = parse_arg(arg, preset="full", steps=-1, lr=-1.0, seed=0, d_model=-1)
  preset = dict(PRESETS[a["preset"]])
  task, fields, full_steps = TASKS[label]
  if a["preset"] == "full":
    preset["steps"] = full_steps
  c = ml_collections.ConfigDict()
  c.name = f"{label}_{kind}{layers}"
  c.label = label
  c.preset = a["preset"]
  c.task = dict(name=task, **fields)
  c.model = dict(kind=kind, layers=layers,
                 d_model=a["d_model"] if a["d_model"] > 0 else preset["d_model"],
                 n_head=4, head_dim=preset["head_dim"], d_state=preset["d_state"],
                 unroll=preset.get("unroll", 8))
  c.run = dict(steps=a["steps"] if a["steps"] > 0 else preset["steps"], batch=preset["batch"],
               lr=a["lr"] if a["lr"] > 0 else LR[kind], warmup=preset["warmup"],
               train_max_depth=preset["train_max_depth"], eval_depths=preset["eval_depths"],
               eval_per_depth=preset["eval_per_depth"], eval_batch=preset["eval_batch"],
               seed=a["seed"], log_every=preset["log_every"])
  return c
