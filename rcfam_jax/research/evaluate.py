"""Evaluate a trained run: teacher-forced next-action loss and accuracy on held-out windows.

  python -m rcfam_jax.research.evaluate --workdir workdirs/demo --mode teacher [--split validation]
      [--batches N] [--seq-len T] [--batch-size B] [--buckets K] [--data-dir DIR]

  python -m rcfam_jax.research.evaluate --workdir RUN --mode closed-loop [--tasks N] [--max-steps S]
      [--temperature 0] [--top-k K] [--cast-dir DIR] [--data-dir DIR]

Teacher: one JSON line with loss (nats), acc (top-1), top5, valid position count, and the same
by position bucket (early ... late within each window). Windows are the fixed ones of
`data.eval_batches`, each starting from the learned initial state, so with the run's own eval
settings `loss` equals the training log's `val_loss` at the checkpoint's step.

Closed loop: held-out commits (the run's validation commits, recompiled from its Git sources)
start from the editor as it was before each commit; the model (fresh recurrent state) emits
actions whose keys the editor applies until `<commit>` or the step budget (`--max-steps` and
2 x the commit's true actions + 16, counted in model steps). Reports the exact-match rate
of the files against the real commit and a normalised distance (1 - difflib ratio over the
files the commit or the rollout touched); rollouts can be exported as asciicasts (one screen
per model step).

Tokenized runs (data.tokenizer_size > 0): an action is a token of the run's learned tokenizer,
read from the run's dataset directory (`--data-dir` overrides it). Each token is decoded into
its keys, pressed one by one; the model sees the frame after all keys of its previous token,
as in training (one frame per token, the one shown before its first key). `<commit>` stops the
rollout where it is pressed, also inside a token. A token that is no key sequence (a base
byte that is no key; never a training target) or an id past the vocabulary presses nothing
and counts as an invalid action. True actions are the commit's keys encoded as the dataset
encodes them (greedy longest match); without a tokenizer an action is one key.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import functools
import json
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from data_pipelines import ansi, episode, render, sources
from data_pipelines import keys as K
from data_pipelines.tokenizer import Tokenizer, TokenizerError
from rcfam_jax import batch as batch_lib
from rcfam_jax import data, experiment, metrics, train
from rcfam_jax import workdir as workdir_lib
from rcfam_jax.config import ExecConfig, ModelConfig
from rcfam_jax.research import rollout


def teacher_forced(params, cfg: ModelConfig, ex: ExecConfig, batches, buckets: int) -> dict:
  """Teacher-forced metrics over a list of batches (frames, actions, valid, reset): the training
  loop's evaluation step (train.eval_step), so `loss` is its val_loss."""
  fn = jax.jit(functools.partial(train.eval_step, cfg=cfg, ex=ex, buckets=buckets))
  sums = None
  for b in batches:
    out = fn(params, {k: jnp.asarray(v) for k, v in batch_lib.select(b).items()})
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  if sums is None:
    raise ValueError("no evaluation batches")
  return train.ratios(jax.tree.map(np.asarray, sums), buckets)


def run_teacher(
  workdir: str,
  *,
  split: str = "validation",
  batches: int | None = None,
  seq_len: int | None = None,
  batch_size: int | None = None,
  buckets: int | None = None,
  data_dir: str | None = None,
) -> dict:
  """Loads the run's newest checkpoint and evaluates it teacher-forced; defaults from its config."""
  params, cfg, run = workdir_lib.load(workdir)
  tc = run.exp.train
  batches, seq_len = batches or tc.eval_batches, seq_len or tc.eval_seq_len
  batch_size, buckets = batch_size or tc.eval_batch_size, buckets or tc.position_buckets
  ds = rollout.dataset(run, data_dir)
  evb = data.eval_batches(ds, split, batch_size, seq_len, batches)
  res = teacher_forced(params, cfg, run.exp.exec, evb, buckets)
  return {
    "mode": "teacher",
    "workdir": workdir,
    "step": run.step,
    "split": split,
    "batches": batches,
    "batch_size": batch_size,
    "seq_len": seq_len,
    **res,
  }


# -- closed loop -----------------------------------------------------------------------------


class Task(NamedTuple):
  name: str
  editor: object  # data_pipelines Editor just before the commit's first key
  keys: list[int]  # the real keys of the commit, ending with <commit>
  target: dict[str, str]  # the files after the real commit


def commit_tasks(start_files, keys, rows: int, cols: int, names=()) -> list[Task]:
  """Splits a segment's keys at <commit> into one Task per commit (BOS is skipped); `names`
  (e.g. the commits' shas) label the tasks in order, else they are numbered."""
  ed = render.new_editor(rows, cols, start_files)
  tasks, cur, before = [], [], copy.deepcopy(ed)
  for k in (int(k) for k in keys):
    if k == K.BOS:
      continue
    ed.press(k)
    cur.append(k)
    if k == K.COMMIT:
      name = names[len(tasks)] if len(tasks) < len(names) else f"#{len(tasks)}"
      tasks.append(Task(name, before, cur, ed.file_texts()))
      cur, before = [], copy.deepcopy(ed)
  return tasks


def held_out_tasks(exp: experiment.Experiment, n: int) -> list[Task]:
  """The first `n` held-out commits of the run's sources (val_fraction / val_sources)."""
  d, rows, cols, tasks = exp.data, exp.model.rows, exp.model.cols, []
  specs = [(s, d.val_fraction) for s in d.sources if d.val_fraction] + [
    (s, 0.0) for s in d.val_sources
  ]
  if not specs:
    raise ValueError("the run holds out no commits (data.val_fraction = 0, no val_sources)")
  for spec, frac in specs:
    src = sources.resolve(spec, d.cache_dir)
    ep = episode.compile_episode(
      src.path,
      src.name,
      episode.EpisodeConfig(
        rows, cols, d.max_keys_per_commit, d.max_segment_steps, val_fraction=frac
      ),
    )
    for seg in ep.segments:
      if frac == 0.0 or seg.split == "validation":
        tasks += commit_tasks(
          seg.start_files, seg.keys, rows, cols, [f"{src.name}@{sha[:10]}" for sha in seg.commits]
        )
      if len(tasks) >= n:
        return tasks[:n]
  return tasks


def distance(start: dict, final: dict, target: dict) -> float:
  """1 - difflib ratio between final and target over the paths either changed (0 = equal)."""
  paths = sorted(
    p
    for p in set(start) | set(final) | set(target)
    if final.get(p) != target.get(p) or start.get(p) != target.get(p)
  )
  a = "".join(f"\0{p}\0{final.get(p, '')}" for p in paths if p in final)
  b = "".join(f"\0{p}\0{target.get(p, '')}" for p in paths if p in target)
  if a == b:
    return 0.0
  return 1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def write_cast(path: str, screens, rows: int, cols: int, title: str, fps: float = 30.0) -> None:
  """An asciicast v2 file of a rollout's screens (any epath: local or gs://...), written whole."""
  metrics.write_text(path, "\n".join(ansi.cast_lines(screens, rows, cols, title, fps)) + "\n")


def run_tokenizer(run: workdir_lib.RunInfo, data_dir: str | None = None) -> Tokenizer | None:
  """The action tokenizer a run trained with (None when it has one key per action)."""
  size, vocab = run.exp.data.tokenizer_size, run.exp.model.vocab_size
  if not size:
    return None
  try:
    tok = rollout.dataset(run, data_dir).tokenizer
  except FileNotFoundError as e:
    raise FileNotFoundError(
      f"the run is tokenized (data.tokenizer_size={size}) and its tokenizer is stored in its "
      f"dataset, which is missing: pass --data-dir DIR of the dataset it trained on, or rebuild "
      f"it with `make data EXP=<experiment>` ({e})"
    ) from e
  if len(tok) > vocab:
    raise ValueError(
      f"the tokenizer in {data_dir or run.exp.data.dir!r} has {len(tok)} tokens but "
      f"the model emits {vocab} action ids: not the run's tokenizer; pass "
      "--data-dir DIR of the dataset the run trained on"
    )
  return tok


def action_keys(tokenizer: Tokenizer | None = None):
  """action id -> tuple of the key ids it presses: one key per id without a tokenizer, else the
  token's keys; () for an id that is no key sequence or past the vocabulary."""
  if tokenizer is None:
    table = [(k,) for k in range(K.NUM_KEYS)]
  else:
    table = []
    for i in range(len(tokenizer)):
      try:
        table.append(tuple(tokenizer.token_keys(i)))
      except TokenizerError:
        table.append(())
  return lambda a: table[a] if 0 <= a < len(table) else ()


def true_actions(keys, tokenizer: Tokenizer | None = None) -> list[int]:
  """A commit's actions as the dataset trains on them: its keys, or their greedy tokens."""
  return [int(k) for k in keys] if tokenizer is None else tokenizer.encode_all(keys)[0]


def closed_loop(
  make_policy,
  tasks,
  rows: int,
  cols: int,
  *,
  tokenizer: Tokenizer | None = None,
  max_steps: int = 2000,
  slack: float = 2.0,
  cast_dir: str | None = None,
) -> dict:
  """Runs `make_policy(task)` on each task; budget min(max_steps, slack * true actions + 16).

  Policies emit action ids: key ids, or token ids of `tokenizer` (decoded into keys)."""
  if not tasks:
    raise ValueError("no held-out commits to evaluate")
  keys_of, rows_out = action_keys(tokenizer), []
  for i, t in enumerate(tasks):
    real = true_actions(t.keys, tokenizer)
    budget = min(max_steps, int(slack * len(real)) + 16)
    r = rollout.rollout(make_policy(t), t.editor, rows, cols, budget, action_keys=keys_of)
    start = t.editor.file_texts()
    rows_out.append(
      {
        "task": t.name,
        "exact": r.files == t.target,
        "steps": len(r.actions),
        "real_steps": len(real),
        "keys": len(r.keys),
        "real_keys": len(t.keys),
        "invalid": sum(not keys_of(a) for a in r.actions),
        "committed": r.keys[-1:] == [K.COMMIT],
        "distance": distance(start, r.files, t.target),
        "noop_distance": distance(start, start, t.target),
      }
    )
    if cast_dir:
      epath.Path(cast_dir).mkdir(parents=True, exist_ok=True)
      write_cast(str(epath.Path(cast_dir) / f"rollout_{i:03d}.cast"), r.screens, rows, cols, t.name)
  mean = lambda k: float(np.mean([float(x[k]) for x in rows_out]))
  return {
    "tasks": len(rows_out),
    "exact_match": mean("exact"),
    "distance": mean("distance"),
    "noop_distance": mean("noop_distance"),
    "committed": mean("committed"),
    "mean_steps": mean("steps"),
    "mean_real_steps": mean("real_steps"),
    "mean_keys": mean("keys"),
    "mean_real_keys": mean("real_keys"),
    "invalid_actions": mean("invalid"),
    "rollouts": rows_out,
  }


def run_closed_loop(
  workdir: str,
  *,
  tasks: int = 8,
  max_steps: int = 2000,
  temperature: float = 0.0,
  top_k: int | None = None,
  seed: int = 0,
  cast_dir: str | None = None,
  data_dir: str | None = None,
) -> dict:
  """The newest checkpoint of `workdir` in closed loop on its held-out commits; a tokenized run
  reads its tokenizer from its dataset (`data_dir` overrides the configured directory)."""
  params, cfg, run = workdir_lib.load(workdir)
  tok = run_tokenizer(run, data_dir)
  ts = held_out_tasks(run.exp, tasks)
  step = rollout.make_step(cfg)
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), len(ts)))
  make = lambda t: rollout.model_policy(
    params, cfg, next(keys), temperature=temperature, top_k=top_k, step=step
  )
  res = closed_loop(
    make, ts, cfg.rows, cfg.cols, tokenizer=tok, max_steps=max_steps, cast_dir=cast_dir
  )
  return {
    "mode": "closed-loop",
    "workdir": workdir,
    "step": run.step,
    "tokens": len(tok) if tok else 0,
    "temperature": temperature,
    "top_k": top_k,
    **res,
  }


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True, help="a training run (config.json, checkpoints/)")
  p.add_argument("--mode", default="teacher", choices=("teacher", "closed-loop"))
  p.add_argument("--split", default="validation")
  p.add_argument("--batches", type=int, default=None, help="default: the run's train.eval_batches")
  p.add_argument("--seq-len", type=int, default=None, help="default: train.eval_seq_len")
  p.add_argument("--batch-size", type=int, default=None, help="default: train.eval_batch_size")
  p.add_argument("--buckets", type=int, default=None, help="default: train.position_buckets")
  p.add_argument(
    "--data-dir",
    default=None,
    help="override the run's data.dir (closed loop: where a tokenized run's tokenizer is)",
  )
  p.add_argument("--tasks", type=int, default=8, help="closed loop: held-out commits")
  p.add_argument(
    "--max-steps",
    type=int,
    default=2000,
    help="closed loop: model steps (keys, or tokens) per commit",
  )
  p.add_argument("--temperature", type=float, default=0.0, help="closed loop: 0 = greedy")
  p.add_argument("--top-k", type=int, default=None)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--cast-dir", default=None, help="closed loop: write rollout_NNN.cast here")
  a = p.parse_args(argv)
  for name in ("batches", "seq_len", "batch_size", "buckets", "tasks", "max_steps", "top_k"):
    if getattr(a, name) is not None and getattr(a, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be >= 1")
  t0 = time.perf_counter()
  if a.mode == "closed-loop":
    res = run_closed_loop(
      a.workdir,
      tasks=a.tasks,
      max_steps=a.max_steps,
      temperature=a.temperature,
      top_k=a.top_k,
      seed=a.seed,
      cast_dir=a.cast_dir,
      data_dir=a.data_dir,
    )
  else:
    res = run_teacher(
      a.workdir,
      split=a.split,
      batches=a.batches,
      seq_len=a.seq_len,
      batch_size=a.batch_size,
      buckets=a.buckets,
      data_dir=a.data_dir,
    )
  res["wall_s"] = round(time.perf_counter() - t0, 2)
  print(json.dumps(res), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
