"""Trains (or resumes) one run per trained sequence length, in-process, into ROOT/T<T>."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import logging
import os

import ml_collections

log = logging.getLogger(__name__)


def _module(name: str):
  return importlib.import_module(name) if importlib.util.find_spec(name) else None


def load_config(exp: str, seq_len: int) -> tuple[ml_collections.ConfigDict, str]:
  """Config for `exp` at T: experiments/<exp>_<T>.py if present, else <exp>.py get_config.

  An <exp>.py whose get_config takes no `seq_len` (e.g. smoke) gets train.seq_len set instead.
  Returns the config and the file it came from.
  """
  per_t = _module(f"experiments.{exp}_{seq_len}")
  if per_t is not None:
    return per_t.get_config(), f"experiments/{exp}_{seq_len}.py"
  base = _module(f"experiments.{exp}")
  if base is None:
    raise FileNotFoundError(f"neither experiments/{exp}_{seq_len}.py nor experiments/{exp}.py")
  if "seq_len" in inspect.signature(base.get_config).parameters:
    c = base.get_config(seq_len=seq_len)
  else:
    c = base.get_config()
    c.train.seq_len = seq_len
  if c.train.seq_len != seq_len:
    raise ValueError(f"experiments/{exp}.py gave train.seq_len={c.train.seq_len}, not {seq_len}")
  return c, f"experiments/{exp}.py"


def _parse_value(text: str, current):
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text  # a bare string such as a path or a name
  if isinstance(current, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(current, tuple) and isinstance(value, str):
    value = (value,)
  return value


def apply_overrides(c: ml_collections.ConfigDict, overrides: list[str]) -> None:
  """Applies '--config.a.b=value' (or 'a.b=value') strings in place; values are Python literals."""
  for item in overrides:
    key, sep, text = item.removeprefix("--config.").partition("=")
    if not sep:
      raise ValueError(f"override {item!r} is not --config.section.field=value")
    *path, leaf = key.split(".")
    node = c
    for p in path:
      if p not in node:
        raise KeyError(f"override {item!r}: no config section {p!r}")
      node = node[p]
    if leaf not in node:
      raise KeyError(f"override {item!r}: no field {leaf!r} (known: {sorted(node.keys())})")
    node[leaf] = _parse_value(text, node[leaf])


def plan(exp: str, seq_lens: list[int], *, equal_tokens: bool = False, steps: int | None = None,
         overrides: tuple[str, ...] = ()) -> list[dict]:
  """One {seq_len, batch_size, tokens_per_step, config, source} per T, before any training.

  equal_tokens: batch_size = tokens / T with tokens = batch_size x T of the longest run's config,
  so every run sees the same number of actions per step (the matched-tokens control).
  """
  if len(set(seq_lens)) != len(seq_lens) or not seq_lens or min(seq_lens) < 1:
    raise ValueError(f"seq_lens must be distinct positive integers, got {seq_lens}")
  runs = []
  for t in sorted(seq_lens):
    c, source = load_config(exp, t)
    if steps is not None:
      c.train.steps = steps
    apply_overrides(c, list(overrides))
    runs.append({"seq_len": t, "config": c, "source": source})
  if equal_tokens:
    if any(o.removeprefix("--config.").startswith("train.batch_size=") for o in overrides):
      raise ValueError("--equal-tokens sets train.batch_size; do not override it as well")
    ref = runs[-1]["config"].train
    tokens = ref.batch_size * ref.seq_len
    for r in runs:
      b = max(1, round(tokens / r["seq_len"]))
      if b * r["seq_len"] != tokens:
        log.warning("T=%d: %d tokens/step do not divide evenly; batch %d gives %d",
                    r["seq_len"], tokens, b, b * r["seq_len"])
      r["config"].train.batch_size = b
  for r in runs:
    tc = r["config"].train
    r.update(batch_size=tc.batch_size, tokens_per_step=tc.batch_size * tc.seq_len)
  return runs


def _write_json(path: str, obj) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def run(exp: str, seq_lens: list[int], root: str, *, equal_tokens: bool = False,
        steps: int | None = None, overrides: tuple[str, ...] = ()) -> list[dict]:
  """Trains or resumes every run, shortest T first; writes ROOT/runs.json first."""
  from rcfam_jax import loop  # heavy: only when training

  runs = plan(exp, seq_lens, equal_tokens=equal_tokens, steps=steps, overrides=overrides)
  os.makedirs(root, exist_ok=True)
  for r in runs:
    r["workdir"] = os.path.join(root, f"T{r['seq_len']}")
  _write_json(os.path.join(root, "runs.json"), {
      "exp": exp, "equal_tokens": equal_tokens, "steps": steps, "overrides": list(overrides),
      "runs": [{k: r[k] for k in ("seq_len", "batch_size", "tokens_per_step", "workdir",
                                  "source")} | {"steps": r["config"].train.steps,
                                                "eval_seq_len": r["config"].train.eval_seq_len}
               for r in runs]})
  for r in runs:
    log.info("T=%d batch=%d -> %s", r["seq_len"], r["batch_size"], r["workdir"])
    r["last"] = loop.train_and_evaluate(r["config"], r["workdir"])
  return runs
