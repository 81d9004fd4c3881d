"""Checkpoints (orbax) of named state items and the data iterator, and a preemption guard.

One orbax CheckpointManager under `directory` keeps the last `keep` steps plus the best by
`best_metric` (a preservation policy: LatestN or BestN). Each step holds
  <item>/   one pytree per name passed to `save` (the loop saves params, train, rnn), so a reader
            restores only the items it needs (inference: the parameters alone);
  meta/     JSON {step, metrics};
  data/     the data iterator's state, one JSON file per process (grain's orbax handler).
Unreadable steps are moved to corrupt/<step>.<time> by `restore_latest`. Saves are async:
`wait()` or `close()` makes them durable. This is the only module that imports orbax.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

log = logging.getLogger(__name__)

Restored = tuple[int, Any, "dict | None"]
_RESERVED = ("meta", "data", "metrics")  # ours, and the manager's own metrics item


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


class _DataState:
  """A data iterator's state as grain's orbax handler reads and writes it (JSON per process).

  A snapshot taken when `save` is called, so an async save never sees a later state."""

  def __init__(self, state=None):
    self.state = state

  def get_state(self) -> bytes:
    return json.dumps(self.state).encode()

  def set_state(self, raw: bytes) -> None:
    self.state = json.loads(raw)

  def start_prefetch(self) -> None:  # called by grain's handler after a restore
    pass


class Checkpointer:
  """The last `keep` checkpoints plus the best one by `best_metric` (lower is better)."""

  def __init__(self, directory: str, *, keep: int = 3, best_metric: str = "val_loss"):
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep}.")
    self.directory = _path(directory)
    if (self.directory / "latest").exists():
      raise ValueError(
        f"{self.directory} holds checkpoints in the layout of rcfam_jax before 2026-12-01 "
        "(latest/, best/), whose optimizer state no longer matches: train into a new workdir"
      )
    self.best_metric = best_metric
    metric = lambda m: m.get(best_metric, math.inf)  # steps saved without it rank last
    policy = pp.AnyPreservationPolicy(
      [
        pp.LatestN(n=keep),
        pp.BestN(get_metric_fn=metric, reverse=True, n=1, keep_checkpoints_without_metrics=False),
      ]
    )
    self._mgr = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        preservation_policy=policy,
        best_fn=metric,
        best_mode="min",
        create=True,
        cleanup_tmp_directories=True,
      ),
    )

  def save(
    self,
    step: int,
    tree: dict,
    data_state: dict | None = None,
    *,
    metrics: dict | None = None,
    force: bool = False,
  ) -> bool:
    """Starts an async save of the named items of `tree` and `data_state` at `step`.

    `metrics` holding a finite `best_metric` makes the step a candidate for best. A step at or
    below the newest saved one is skipped (a repeat of the same step silently). True if saved.
    """
    step, scalars = int(step), _scalar_metrics(metrics)
    bad = sorted(set(tree) & set(_RESERVED))
    if bad:
      raise ValueError(f"checkpoint item names {bad} are reserved; rename them")
    last = self._mgr.latest_step()
    if last is not None and step <= last:
      if step < last:
        log.warning(
          "Not saving step %d: %s already has step %d. Restore it or use a new directory.",
          step,
          self.directory,
          last,
        )
      return False
    items = {k: ocp.args.StandardSave(v) for k, v in tree.items()}
    items["meta"] = ocp.args.JsonSave({"step": step, "metrics": scalars})
    if data_state is not None:
      items["data"] = grain.checkpoint.CheckpointSave(_DataState(data_state))
    value = scalars.get(self.best_metric)
    ranked = {self.best_metric: value} if value is not None and math.isfinite(value) else {}
    return bool(self._mgr.save(step, args=ocp.args.Composite(**items), metrics=ranked, force=force))

  def latest_step(self) -> int | None:
    return self._mgr.latest_step()

  def best_step(self) -> int | None:
    """The step with the lowest `best_metric` (None when no saved step has one)."""
    with_metrics = [s for s in self._mgr.all_steps() if self._mgr.metrics(s)]
    return self._mgr.best_step() if with_metrics else None

  def _items(self, step: int) -> list[str]:
    d = self.directory / str(step)
    return sorted(
      p.name
      for p in d.iterdir()
      if p.is_dir() and p.name not in _RESERVED and not p.name.startswith("_")
    )

  def _has_data(self, step: int) -> bool:
    """Whether `step` holds a data state; raises if it holds one for another process count."""
    d = self.directory / str(step) / "data"
    if not d.exists():
      return False
    mine = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    if not (d / mine).exists():
      saved = sorted(p.name for p in d.iterdir() if p.name.startswith("process_"))
      raise ValueError(
        f"{d} holds the data states {saved}, not {mine}: the run was saved by another number "
        "of processes; resume with the same number of processes (or restore without the data "
        "state)"
      )
    return True

  def _restore(self, step: int, abstract: dict | None, data: bool = True) -> Restored:
    names = self._items(step) if abstract is None else list(abstract)
    items = {
      k: ocp.args.StandardRestore(
        None if abstract is None else jax.tree.map(_as_target, abstract[k])
      )
      for k in names
    }
    has_data = data and self._has_data(step)
    holder = _DataState()
    if has_data:
      items["data"] = grain.checkpoint.CheckpointRestore(holder)
    out = self._mgr.restore(step, args=ocp.args.Composite(**items))
    return step, {k: out[k] for k in names}, holder.state if has_data else None

  def restore(
    self, abstract: dict | None, step: int | None = None, *, data: bool = True
  ) -> Restored | None:
    """(step, items, data_state) at `step` (default: the newest), or None when there is none.

    `abstract`: {item name: pytree of jax.ShapeDtypeStruct (with .sharding for several
    devices) or arrays}; only these items are read. None reads every item as saved.
    data: also read this process's data state (None when the step has none, or data=False).
    """
    self.wait()
    step = self._mgr.latest_step() if step is None else step
    return None if step is None else self._restore(step, abstract, data)

  def restore_latest(self, abstract: dict | None, *, data: bool = True) -> Restored | None:
    """`restore` of the newest readable checkpoint, or None when there is none.

    Unreadable newer checkpoints are logged, skipped and moved to corrupt/. Raises
    RuntimeError when checkpoints exist but none can be read, and ValueError when the newest was
    saved by another number of processes.
    """
    self.wait()
    steps, bad = sorted(self._mgr.all_steps(), reverse=True), []
    if steps and data:
      self._has_data(steps[0])
    for step in steps:
      try:
        restored = self._restore(step, abstract, data)
      except Exception as e:
        log.warning(
          "Checkpoint %s step %d is unreadable (%s); trying an older one.",
          self.directory,
          step,
          _brief(e),
        )
        bad.append((step, e))
        continue
      if bad:
        self._quarantine([s for s, _ in bad])
      return restored
    if bad:
      step, e = bad[0]
      raise RuntimeError(
        f"None of the {len(steps)} checkpoints in {self.directory} could be restored "
        f"(newest: step {step}, {_brief(e)}). If the abstract state no longer matches "
        f"the saved state, fix the config; otherwise move the directory aside to start fresh."
      ) from e
    return None

  def restore_best(self, abstract: dict | None, *, data: bool = True) -> Restored | None:
    """`restore` of the best checkpoint, or None when no saved step has `best_metric`."""
    step = self.best_step()
    return None if step is None else self.restore(abstract, step, data=data)

  def _quarantine(self, steps):
    """Moves unreadable steps to corrupt/ so that later saves at those steps are not skipped."""
    if jax.process_index() == 0:
      dest = self.directory / "corrupt"
      dest.mkdir(parents=True, exist_ok=True)
      for step in steps:
        src, target = self.directory / str(step), dest / f"{step}.{int(time.time())}"
        try:
          src.rename(target)
          log.warning("Moved unreadable checkpoint %s to %s.", src, target)
        except Exception as e:
          log.warning(
            "Could not move unreadable checkpoint %s aside (%s); delete it by hand or "
            "saves up to step %d will be skipped.",
            src,
            e,
            step,
          )
    self._mgr.reload()

  def wait(self) -> None:
    self._mgr.wait_until_finished()

  def close(self) -> None:
    self._mgr.close()

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
