"""Shared builder for the depth-benchmark configs: experiments/depth/<family>.py.

Each family file is `get_config(arg)` -> ConfigDict with `task`, `model` and `run` sections;
`arg` is a big_vision-style string "model=transformer,layers=8,preset=full,steps=4000,seed=1".
Fields of every family (ARG): model=lstm|transformer|mamba, layers, preset, and the overrides
steps, lr, seed, d_model, batch (-1: the preset's); protocol=variable|fixed and length (below);
pos=rope|none|alibi, the Transformer's position encoding (the position ablation); a family adds
its own (frjt: jump).
The config's `name` is the run name, <label>_<model><layers>[_<pos>] (e.g. frjt16_lstm1,
maze_transformer8_alibi; the pos suffix only where it is not rope). Presets:
  full:  the H200 sweep (d_model 128, batch 128, eval depths 1..64); per-task step counts,
         batch and LSTM width in FULL below (sized so that the whole sweep is one short run;
         timings in docs/DEPTH_BENCHMARK.md); with protocol=fixed, FIXED's smaller budgets
         on top and the Transformer in bfloat16 (the fixed sweep in 15 minutes);
  cpu:   a small real run on a 2-core CPU (d_model 64, 600 steps of batch 32, depths 1..32);
  quick: a smoke test (d_model 16, 3 steps), used by tests/tasks_sweep_test.py.
Training depths are 1..16 for every task. The model section also holds the speed options
(compute_dtype float32, or FIXED_DTYPE's; attention_impl auto: cuDNN on a GPU in bfloat16;
lstm_impl scan), overridable for a whole sweep with --config.model.<field>=...
(docs/DEPTH_BENCHMARK.md, "What the fixed protocol costs").
Protocols (rcfam_jax/research/tasks/task.py): protocol=variable (the default) pads each row
after its instance, so deeper rows are longer; protocol=fixed gives every training and
evaluation row one length L (the task field fixed_len), filler in the slots that the depth
does not use, so a cliff is depth and not length. Its evaluation depths are the preset's
`fixed_eval_depths` (to 128 in full, 64 in cpu) and L defaults to the variable protocol's
static row length at the deepest of them (full: FRJT 512, FRJT-16 2048, maze 145,
Last-Write 512, S3 128); length=N sets L (an error if N cannot hold the deepest eval depth).
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg
from rcfam_jax.research import tasks
from rcfam_jax.research.baselines.config import POS_ENCODINGS

PRESETS = {
  "full": dict(
    train_max_depth=16,
    d_model=128,
    head_dim=32,
    d_state=32,
    steps=3000,
    batch=128,
    warmup=200,
    eval_depths=(1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64),
    fixed_eval_depths=(1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64, 96, 128),
    eval_per_depth=512,
    eval_batch=512,
    log_every=500,
  ),
  "cpu": dict(
    train_max_depth=16,
    d_model=64,
    head_dim=16,
    d_state=16,
    steps=600,
    batch=32,
    warmup=50,
    eval_depths=(1, 2, 4, 8, 12, 16, 24, 32),
    fixed_eval_depths=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64),
    eval_per_depth=128,
    eval_batch=128,
    log_every=100,
  ),
  "quick": dict(
    train_max_depth=3,
    d_model=16,
    head_dim=8,
    d_state=8,
    unroll=1,
    steps=3,
    batch=4,
    warmup=1,
    eval_depths=(1, 3, 5),
    fixed_eval_depths=(1, 3, 6),
    eval_per_depth=4,
    eval_batch=4,
    log_every=1,
  ),
}
LR = {"lstm": 3e-3, "transformer": 1e-3, "mamba": 2e-3}
MODELS = tuple(LR)
ARG = dict(
  model="lstm",
  layers=1,
  preset="full",
  steps=-1,
  lr=-1.0,
  seed=0,
  d_model=-1,
  batch=-1,
  protocol="variable",
  length=-1,
  pos="rope",
)
PROTOCOLS = ("variable", "fixed")
# Benchmark variants: label -> (task name, task fields).
TASKS = {
  "frjt": ("frjt", dict(max_jump=4, n_payloads=8)),
  # Longer jumps: pointer chains take longer to coalesce (docs/DEPTH_BENCHMARK.md).
  "frjt16": ("frjt", dict(max_jump=16, n_payloads=8)),
  "maze": ("maze", dict(width=4, height=4)),
  "last_write": ("last_write", dict(max_gap=4, n_payloads=8)),
  "perm": ("perm", dict(n=3)),
}
# LSTM width multiplier per task (every preset): the maze LSTM must hold 16 cells' walls and
# the position and do a three-way (position x move x wall) lookup per step; hidden 256.
LSTM_WIDTH = {"maze": 2}
# `full` preset overrides: label -> run fields; (label, kind), then the config name, on top.
# Each budget is explained in docs/DEPTH_BENCHMARK.md ("Training"). Maze: batch 256 (the
# GPU step is latency-bound, so a wider batch is nearly free); the LSTM is the cheapest model
# per step there and the slowest to converge.
FULL = {
  "frjt": dict(steps=3000),
  "frjt16": dict(steps=3000),
  "maze": dict(steps=8000, batch=256),
  ("maze", "lstm"): dict(steps=50000),  # cheap steps, slow convergence
  "maze_transformer1": dict(steps=5000),  # the weak baseline: its plateau is clear early
  "last_write": dict(steps=1000),
  "perm": dict(steps=3000),
}
# `full` preset, fixed protocol, on top of FULL: the budgets that fit the whole fixed sweep
# (35 configs, rows 128 to 512 tokens) in 15 minutes on one H200, from the step costs measured
# in docs/DEPTH_BENCHMARK.md ("What the fixed protocol costs"); and the Transformer computes in
# bfloat16, where cuDNN's attention took its step from 45.7 to 13.4 ms (FRJT, 8 layers). The
# LSTM and Mamba-2 stay float32: bfloat16 did not make their steps faster.
FIXED = {
  "frjt": dict(steps=2000),
  "maze": dict(steps=2500),
  ("maze", "lstm"): dict(steps=15000),
  "perm": dict(steps=2000),
}
FIXED_DTYPE = {"transformer": "bfloat16"}


def parse(arg: str | None, **variant) -> dict:
  """`arg` -> ARG and the family's `variant` fields (name=default), typed and checked."""
  defaults = {**ARG, **variant}
  a = dict(defaults)
  for key, value in parse_arg(arg, **dict.fromkeys(defaults)).items():
    if value is not None:
      try:
        a[key] = type(defaults[key])(value)
      except ValueError:
        typ = type(defaults[key]).__name__
        raise ValueError(f"config arg {key}={value!r}: expected {typ}") from None
  choose(a, "model", MODELS)
  choose(a, "preset", tuple(PRESETS))
  choose(a, "protocol", PROTOCOLS)
  choose(a, "pos", POS_ENCODINGS)
  if a["pos"] != "rope" and a["model"] != "transformer":
    raise ValueError(f"config arg pos={a['pos']} is the Transformer's; model={a['model']}")
  if a["layers"] < 1:
    raise ValueError(f"config arg layers={a['layers']} must be >= 1")
  if a["length"] > 0 and a["protocol"] != "fixed":
    raise ValueError(f"config arg length={a['length']} needs protocol=fixed")
  return a


def choose(a: dict, field: str, valid):
  """a[field] (mapped through `valid` if a dict), or a ValueError naming the valid values."""
  if a[field] not in valid:
    raise ValueError(f"config arg {field}={a[field]!r} is not one of {'|'.join(map(str, valid))}")
  return valid[a[field]] if isinstance(valid, dict) else a[field]


def make_config(label: str, a: dict):
  """The run of task variant `label` (a key of TASKS) with `parse`d fields `a`."""
  kind, layers = a["model"], a["layers"]
  preset = dict(PRESETS[a["preset"]])
  task, fields = TASKS[label]
  full, fixed = a["preset"] == "full", a["protocol"] == "fixed"
  budget_tables = [FULL, FIXED] if fixed else [FULL]  # the fixed protocol's override FULL's
  for budgets in budget_tables if full else []:
    for key in (label, (label, kind), f"{label}_{kind}{layers}"):
      preset.update(budgets.get(key, {}))
  dtype = FIXED_DTYPE.get(kind, "float32") if full and fixed else "float32"
  d_model = preset["d_model"] * (LSTM_WIDTH.get(label, 1) if kind == "lstm" else 1)
  eval_depths = preset["eval_depths"]
  if fixed:
    eval_depths = preset["fixed_eval_depths"]
    fields = dict(fields, fixed_len=fixed_length(task, fields, max(eval_depths), a["length"]))
  c = ml_collections.ConfigDict()
  c.name = f"{label}_{kind}{layers}" + ("" if a["pos"] == "rope" else f"_{a['pos']}")
  c.label = label
  c.preset = a["preset"]
  c.protocol = a["protocol"]
  c.task = dict(name=task, **fields)
  c.model = dict(
    kind=kind,
    layers=layers,
    d_model=a["d_model"] if a["d_model"] > 0 else d_model,
    n_head=4,
    head_dim=preset["head_dim"],
    d_state=preset["d_state"],
    unroll=preset.get("unroll", 8),
    pos_encoding=a["pos"],
    compute_dtype=dtype,  # the speed options (--config.model.X=...): ModelConfig's fields
    attention_impl="auto",
    lstm_impl="scan",
  )
  c.run = dict(
    steps=a["steps"] if a["steps"] > 0 else preset["steps"],
    batch=a["batch"] if a["batch"] > 0 else preset["batch"],
    lr=a["lr"] if a["lr"] > 0 else LR[kind],
    warmup=preset["warmup"],
    train_max_depth=preset["train_max_depth"],
    eval_depths=eval_depths,
    eval_per_depth=preset["eval_per_depth"],
    eval_batch=preset["eval_batch"],
    seed=a["seed"],
    log_every=preset["log_every"],
  )
  return c


def fixed_length(task: str, fields: dict, max_depth: int, length: int = -1) -> int:
  """The fixed protocol's row length L: `length`, or (-1) the variable protocol's static row
  length at `max_depth`; a ValueError if L cannot hold `max_depth`."""
  if length <= 0:
    length = tasks.make(task, **fields).seq_len(max_depth)
  try:
    tasks.make(task, **fields, fixed_len=length).seq_len(max_depth)
  except ValueError as e:
    raise ValueError(f"config arg length={length}: {e}") from None
  return length
