"""Checkpoints (orbax) of the train state and the data iterator, and a preemption guard.

Layout under `directory`:
  latest/<step>/{state,meta}   the last `keep` checkpoints
  best/<step>/{state,meta}     the best one by `best_metric` (min), kept even once out of latest/
  corrupt/<step>.<time>        unreadable checkpoints moved aside by `restore_latest`
`state` is any pytree of arrays (StandardSave); `meta` is JSON: {step, data_state, metrics}.
Saves are async: `wait()` or `close()` makes them durable. This is the only module that imports
orbax (STYLE.md section 5.7).
"""
from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

log = logging.getLogger(__name__)

Restored = tuple[int, Any, "dict | None"]


def _path(directory: str) -> epath.Path:
  return epath.Path(directory if "://" in directory else os.path.abspath(directory))


def _as_target(leaf):
  """Restore target for one leaf: jax arrays -> ShapeDtypeStruct with their sharding."""
  if isinstance(leaf, jax.Array):
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
  if isinstance(leaf, jax.ShapeDtypeStruct) and getattr(leaf, "sharding", None) is None:
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
  return leaf  # np.ndarray / python scalars restore as they are


def _brief(e: Exception) -> str:
  msg = str(e).replace("\n", " ")
  return f"{type(e).__name__}: {msg[:400]}{'...' if len(msg) > 400 else ''}"


def _scalar_metrics(metrics: dict | None) -> dict:
  out = {}
  for k, v in (metrics or {}).items():
    try:
      out[k] = float(np.asarray(v))
    except (TypeError, ValueError):
      continue  # non-scalar entries are not tracked by orbax
  return out


class Checkpointer:
  """The last `keep` checkpoints plus (optionally) the best one by `best_metric` (lower is better)."""

  def __init__(self, directory: str, *, keep: int = 3, keep_best: bool = True,
               best_metric: str = "val_loss"):
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}.")
    self.directory = _path(directory)
    self.best_metric = best_metric
    self._latest = ocp.CheckpointManager(
        self.directory / "latest",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             cleanup_tmp_directories=True))
    self._best = None
    self._best_value = None  # a lower bound on what is worth saving; orbax makes the final call
    if keep_best:
      self._best = ocp.CheckpointManager(
          self.directory / "best",
          options=ocp.CheckpointManagerOptions(
              max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode="min",
              keep_checkpoints_without_metrics=False, create=True, cleanup_tmp_directories=True))
      self._best_value = self._read_best_value()

  def _read_best_value(self) -> float | None:
    step = self._best.best_step()
    if step is None:
      return None
    try:
      meta = self._best.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
      return float(meta["metrics"][self.best_metric])
    except Exception as e:  # unknown: the next save goes to orbax, which compares on disk
      log.warning("Could not read the best %s of %s step %d (%s).", self.best_metric,
                  self.directory / "best", step, _brief(e))
      return None

  @staticmethod
  def _args(step, state, data_state, metrics):
    meta = {"step": int(step), "data_state": data_state, "metrics": metrics}
    return ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))

  def save(self, step: int, state, data_state: dict | None = None, *,
           metrics: dict | None = None, force: bool = False) -> bool:
    """Starts an async save of `state` and `data_state` at `step`. True if latest/ got one.

    `metrics` containing `best_metric` (finite) also offers the checkpoint to best/. A step at
    or below the newest saved one is skipped (a repeat of the same step silently).
    """
    step = int(step)
    scalars = _scalar_metrics(metrics)
    args = self._args(step, state, data_state, scalars)
    last = self._latest.latest_step()
    saved = False
    if last is not None and step <= last:
      if step < last:
        log.warning("Not saving step %d: %s already has step %d. Restore it or use a new "
                    "directory.", step, self.directory / "latest", last)
    else:
      saved = bool(self._latest.save(step, args=args, metrics=scalars or None, force=force))
    value = scalars.get(self.best_metric)
    if self._best is not None and value is not None and math.isfinite(value):
      if self._best_value is None or value < self._best_value:
        best_last = self._best.latest_step()
        if best_last is None or step > best_last:
          self._best.save(step, args=args, metrics=scalars, force=True)
          self._best_value = value if self._best_value is None else min(value, self._best_value)
    return saved

  def latest_step(self) -> int | None:
    return self._latest.latest_step()

  def _restore(self, manager, step, abstract_state) -> Restored:
    target = jax.tree.map(_as_target, abstract_state)
    out = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
    return step, out["state"], out["meta"].get("data_state")

  def _restore_newest_readable(self, manager, abstract_state, *, quarantine: bool):
    self.wait()
    steps = sorted(manager.all_steps(), reverse=True)
    bad = []
    for step in steps:
      try:
        restored = self._restore(manager, step, abstract_state)
      except Exception as e:
        log.warning("Checkpoint %s step %d is unreadable (%s); trying an older one.",
                    manager.directory, step, _brief(e))
        bad.append((step, e))
        continue
      if quarantine and bad:
        self._quarantine(manager, [s for s, _ in bad])
      return restored
    if bad:
      step, e = bad[0]
      raise RuntimeError(
          f"None of the {len(steps)} checkpoints in {manager.directory} could be restored "
          f"(newest: step {step}, {_brief(e)}). If abstract_state no longer matches "
          f"the saved state, fix the config; otherwise move the directory aside to start fresh."
      ) from e
    return None

  def _quarantine(self, manager, steps):
    """Moves unreadable steps to corrupt/ so that later saves at those steps are not skipped."""
    if jax.process_index() != 0:
      return
    dest = self.directory / "corrupt"
    dest.mkdir(parents=True, exist_ok=True)
    for step in steps:
      src = manager.directory / str(step)
      target = dest / f"{step}.{int(time.time())}"
      try:
        src.rename(target)
        log.warning("Moved unreadable checkpoint %s to %s.", src, target)
      except Exception as e:
        log.warning("Could not move unreadable checkpoint %s aside (%s); delete it by hand or "
                    "saves up to step %d will be skipped.", src, e, step)
    manager.reload()

  def restore_latest(self, abstract_state) -> Restored | None:
    """(step, state, data_state) of the newest readable checkpoint, or None when there is none.

    `abstract_state`: pytree of jax.ShapeDtypeStruct (with .sharding for multi-device) or of
    arrays, used as the restore target. Unreadable newer checkpoints are logged, skipped and
    moved to corrupt/. Raises RuntimeError when checkpoints exist but none can be read.
    """
    return self._restore_newest_readable(self._latest, abstract_state, quarantine=True)

  def restore_best(self, abstract_state) -> Restored | None:
    """(step, state, data_state) of the best checkpoint, or None when there is none."""
    if self._best is None:
      return None
    return self._restore_newest_readable(self._best, abstract_state, quarantine=False)

  def wait(self) -> None:
    self._latest.wait_until_finished()
    if self._best is not None:
      self._best.wait_until_finished()

  def close(self) -> None:
    self._latest.close()
    if self._best is not None:
      self._best.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class PreemptionGuard:
  """Turns SIGTERM/SIGINT into a flag that the training loop polls (then saves and exits).

    with PreemptionGuard() as guard:
      for step in ...:
        ...
        if guard.requested:
          ckpt.save(step, state, data_state, force=True); break

  A second signal restores the previous handlers and re-delivers itself (Ctrl-C twice = abort).
  Outside the main thread signal handlers cannot be installed; the guard then stays inert.
  """

  def __init__(self, signals=(signal.SIGTERM, signal.SIGINT)):
    self._signals = tuple(signals)
    self._previous: dict[int, Any] = {}
    self.requested = False
    self.signal_name: str | None = None

  def _handler(self, signum, frame):
    del frame
    if self.requested:  # second signal: give up gracefully stopping
      self._restore()
      os.kill(os.getpid(), signum)
      return
    self.requested = True
    self.signal_name = signal.Signals(signum).name
    log.warning("Received %s: will save a checkpoint and stop at the next step.", self.signal_name)

  def _restore(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()

  def __enter__(self):
    if threading.current_thread() is not threading.main_thread():
      log.warning("PreemptionGuard outside the main thread: signals are not intercepted.")
      return self
    for signum in self._signals:
      self._previous[signum] = signal.signal(signum, self._handler)
    return self

  def __exit__(self, *exc):
    self._restore()
