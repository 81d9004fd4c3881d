"""Trains (or resumes) one run per trained sequence length, in-process, into ROOT/T<T>."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence

import ml_collections

from rcfam_jax import experiment, metrics

log = logging.getLogger(__name__)


def _exists(module: str) -> bool:
  return importlib.util.find_spec(module) is not None


def _spec(module: str, arg: str | None) -> str:
  return f"{module}:{arg}" if arg else module


def load_config(
  exp: str, seq_len: int, arg: str | None = None, overrides: Sequence[str] = ()
) -> tuple[ml_collections.ConfigDict, str]:
  """Config for `exp` at T, loaded as rcfam_jax.main loads it (rcfam_jax.experiment).

  experiments/<exp>_<T>.py if present, else <exp>.py with `seq_len=T` in its get_config argument
  when get_config takes a `seq_len` (compilers), else with --config.train.seq_len=T (smoke).
  `arg` is the big_vision-style get_config argument ('a=1,b=2'); `overrides` are
  '--config.section.field=value' arguments, parsed by ml_collections.config_flags.
  Returns the config and the file it came from.
  """
  per_t, base = f"experiments.{exp}_{seq_len}", f"experiments.{exp}"
  if _exists(per_t):
    c, source = experiment.load(_spec(per_t, arg), overrides), f"experiments/{exp}_{seq_len}.py"
  elif not _exists(base):
    raise experiment.ExperimentNotFound(
      f"neither experiments/{exp}_{seq_len}.py nor experiments/{exp}.py"
    )
  elif "seq_len" in inspect.signature(importlib.import_module(base).get_config).parameters:
    c = experiment.load(_spec(base, ",".join(filter(None, [arg, f"seq_len={seq_len}"]))), overrides)
    source = f"experiments/{exp}.py"
  else:
    c = experiment.load(_spec(base, arg), [f"--config.train.seq_len={seq_len}", *overrides])
    source = f"experiments/{exp}.py"
  if c.train.seq_len != seq_len:
    raise experiment.ExperimentError(
      f"{source} gave train.seq_len={c.train.seq_len}, not "
      f"{seq_len}: --seq-lens sets it; do not override it"
    )
  return c, source


def plan(
  exp: str,
  seq_lens: list[int],
  *,
  equal_tokens: bool = False,
  steps: int | None = None,
  overrides: tuple[str, ...] = (),
  arg: str | None = None,
  tokens_per_step: int | None = None,
) -> list[dict]:
  """One {seq_len, batch_size, tokens_per_step, config, source} per T, before any training.

  equal_tokens: batch_size = tokens / T with tokens = batch_size x T of the longest run's config,
  so every run sees the same number of actions per step (the matched-tokens control).
  tokens_per_step: that control with this many actions per step instead (implies equal_tokens),
  so that part of a control can run without its longest T.
  """
  if len(set(seq_lens)) != len(seq_lens) or not seq_lens or min(seq_lens) < 1:
    raise ValueError(f"seq_lens must be distinct positive integers, got {seq_lens}")
  runs = []
  for t in sorted(seq_lens):
    steps_ = [] if steps is None else [f"--config.train.steps={steps}"]
    c, source = load_config(exp, t, arg, [*steps_, *overrides])
    runs.append({"seq_len": t, "config": c, "source": source})
  if tokens_per_step is not None and tokens_per_step < 1:
    raise ValueError(f"tokens_per_step must be a positive integer, got {tokens_per_step}")
  if equal_tokens or tokens_per_step:
    if any(re.match(r"--?config\.train\.batch_size(=|$)", o) for o in overrides):
      raise ValueError(
        "--equal-tokens and --tokens-per-step set train.batch_size; do not override it as well"
      )
    ref = runs[-1]["config"].train
    tokens = tokens_per_step or ref.batch_size * ref.seq_len
    for r in runs:
      b = max(1, round(tokens / r["seq_len"]))
      if b * r["seq_len"] != tokens:
        log.warning(
          "T=%d: %d tokens/step do not divide evenly; batch %d gives %d",
          r["seq_len"],
          tokens,
          b,
          b * r["seq_len"],
        )
      r["config"].train.batch_size = b
  for r in runs:
    tc = r["config"].train
    r.update(batch_size=tc.batch_size, tokens_per_step=tc.batch_size * tc.seq_len)
  return runs


def _write_manifest(root: str, exp: str, runs: list[dict], **settings) -> None:
  """ROOT/runs.json, merged by seq_len with the runs an earlier or parallel invocation wrote."""
  path = os.path.join(root, "runs.json")
  old = []
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f).get("runs", [])
  new = [
    {k: r[k] for k in ("seq_len", "batch_size", "tokens_per_step", "workdir", "source")}
    | {"steps": r["config"].train.steps, "eval_seq_len": r["config"].train.eval_seq_len}
    for r in runs
  ]
  mine = {r["seq_len"] for r in new}
  merged = sorted([r for r in old if r["seq_len"] not in mine] + new, key=lambda r: r["seq_len"])
  metrics.write_text(path, json.dumps({"exp": exp, **settings, "runs": merged}, indent=1))


def _device_queues(runs: list[dict], devices: list[str]) -> list[list[dict]]:
  """Longest runs first, each to the device with the least work (frames per step) so far."""
  queues = [[] for _ in devices]
  load = [0] * len(devices)
  for r in sorted(runs, key=lambda r: -r["tokens_per_step"]):
    i = load.index(min(load))
    queues[i].append(r)
    load[i] += r["tokens_per_step"]
  return queues


def _run_parallel(
  exp: str,
  runs: list[dict],
  root: str,
  devices: list[str],
  steps: int | None,
  overrides: tuple[str, ...],
  arg: str | None,
) -> None:
  """One worker process per device (CUDA_VISIBLE_DEVICES), each training its queue in turn."""
  procs = []
  for dev, queue in zip(devices, _device_queues(runs, devices)):
    if not queue:
      continue
    cmds = []
    for r in queue:
      cmd = [
        sys.executable,
        "-m",
        "rcfam_jax.research.scaling",
        "run",
        "--exp",
        exp,
        "--seq-lens",
        str(r["seq_len"]),
        "--root",
        root,
        *overrides,
        f"--config.train.batch_size={r['batch_size']}",
      ]
      if steps is not None:
        cmd += ["--steps", str(steps)]
      if arg:
        cmd += ["--arg", arg]
      cmds.append(shlex.join(cmd))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=dev)
    log_path = os.path.join(root, f"worker_dev{dev}.log")
    log.info("device %s: T=%s (log %s)", dev, [r["seq_len"] for r in queue], log_path)
    with open(log_path, "a") as out:
      procs.append(
        (
          dev,
          subprocess.Popen(
            " && ".join(cmds), shell=True, env=env, stdout=out, stderr=subprocess.STDOUT
          ),
        )
      )
  failed = [dev for dev, p in procs if p.wait() != 0]
  if failed:
    raise RuntimeError(
      f"scaling runs failed on device(s) {failed}: see "
      f"{root}/worker_dev<N>.log; rerun the same command to resume"
    )


def run(
  exp: str,
  seq_lens: list[int],
  root: str,
  *,
  equal_tokens: bool = False,
  steps: int | None = None,
  overrides: tuple[str, ...] = (),
  devices: list[str] | None = None,
  arg: str | None = None,
  tokens_per_step: int | None = None,
) -> list[dict]:
  """Trains or resumes every run; writes (merges) ROOT/runs.json first.

  Without `devices`, in this process, shortest T first. With `devices` (e.g. ["0", "1"]), runs
  are spread over one worker process per GPU and train concurrently.
  """
  runs = plan(
    exp,
    seq_lens,
    equal_tokens=equal_tokens,
    steps=steps,
    overrides=overrides,
    arg=arg,
    tokens_per_step=tokens_per_step,
  )
  os.makedirs(root, exist_ok=True)
  for r in runs:
    r["workdir"] = os.path.join(root, f"T{r['seq_len']}")
  _write_manifest(
    root,
    exp,
    runs,
    equal_tokens=equal_tokens or bool(tokens_per_step),
    tokens_per_step=tokens_per_step,
    steps=steps,
    arg=arg,
    overrides=list(overrides),
  )
  if devices:
    from rcfam_jax import data, experiment  # the shared dataset, built before the workers start

    first = experiment.parse_config(runs[0]["config"])
    data.prepare(first.data, (first.model.rows, first.model.cols))
    _run_parallel(exp, runs, root, devices, steps, overrides, arg)
    return runs
  from rcfam_jax import loop  # heavy: only when training

  for r in runs:
    log.info("T=%d batch=%d -> %s", r["seq_len"], r["batch_size"], r["workdir"])
    r["last"] = loop.train_and_evaluate(r["config"], r["workdir"])
  return runs
