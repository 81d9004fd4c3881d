"""The training loop: data, jitted steps, evaluation, checkpoints, metrics, guards.

`train_and_evaluate(config, workdir)` is what `python -m rcfam_jax.main` runs:
  1. `_build`: the mesh over every device of every process (one device is a mesh of one), the
     dataset, the optimizer and the jitted init / train / eval steps with their shardings;
  2. `_restore_or_init`: the newest readable checkpoint of `workdir` (parameters, optimizer
     state, carried LSTM lane state, this process's reader position) or a fresh state, whose
     parameters come from `train.init_from` when it is set;
  3. `_train`: the steps, logging, evaluation and checkpoints until the last step or a stop.
A stop (SIGTERM/SIGINT, `train.max_minutes`) is agreed by all processes after every step, so
every host saves the same step and exits together; a non-finite loss (the same replicated value
on every host) stops all of them, keeping the last good checkpoint. Every output goes through
etils.epath, so `workdir` may be a cloud bucket (gs://...).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from etils import epath

from rcfam_jax import batch as batch_lib
from rcfam_jax import bptt as bptt_lib
from rcfam_jax import checkpoint, data, interop, metrics, model, optim, sharding, train
from rcfam_jax.experiment import Experiment, parse_config

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
  pass


def checkpoint_items(state: train.TrainState, rnn) -> dict:
  """The checkpoint's named items: the parameters alone (what inference reads), the rest."""
  return {"params": state.params, "train": state._replace(params=None), "rnn": rnn}


def _from_items(items: dict):
  return items["train"]._replace(params=items["params"]), items["rnn"]


@dataclasses.dataclass
class _Job:
  """One training job, built for its mesh: one code path for one device and for many."""

  exp: Experiment
  mesh: Any
  ds: data.Dataset
  init: Callable  # () -> (TrainState, LSTM lane state), born with their shardings
  step: Callable  # (state, batch, rnn) -> (state, rnn, metrics)
  eval: Callable  # (params, batch) -> sums (train.eval_step)
  put: Callable  # this process's host batch -> global device batch
  eval_put: Callable  # a host batch every process holds in full -> global device batch
  rows: tuple[int, int]  # (shard index, shard count) of this process's rows of the batch


def _prepare_data(exp: Experiment) -> data.Dataset:
  """The dataset, built (when missing) by process 0 first while the others wait; then each of
  the others finds it on a shared filesystem or builds its own on a local disk."""
  prepare = lambda: data.prepare(exp.data, (exp.model.rows, exp.model.cols))
  if jax.process_count() == 1:
    return prepare()
  ds = prepare() if sharding.is_primary() else None
  sharding.barrier("rcfam_jax: dataset ready")
  return ds or prepare()


def _build(exp: Experiment) -> _Job:
  tc = exp.train
  mesh = sharding.make_mesh(exp.mesh, batch=tc.batch_size)
  spmd = mesh if mesh.size > 1 else None  # one device: exactly the unsharded program
  if spmd is not None:
    if exp.exec.frames_on_host:
      raise ValueError(
        "exec.frames_on_host is single-device for now: set it to False on a "
        f"mesh of {mesh.size} devices"
      )
    sharding.check_batch(mesh, tc.batch_size // tc.microbatches, tc.seq_len)
    sharding.check_batch(mesh, tc.eval_batch_size, tc.eval_seq_len)
    log.info("mesh %s over %d process(es)", dict(mesh.shape), jax.process_count())
  ds = _prepare_data(exp)
  if exp.model.vocab_size < ds.n_actions:
    raise ValueError(
      f"model.vocab_size={exp.model.vocab_size} < {ds.n_actions} actions in the "
      f"data: raise model.vocab_size to at least {ds.n_actions}"
    )
  tx = optim.make(exp.optim, tc.steps)

  def init():
    state = train.init_train_state(jax.random.PRNGKey(tc.seed), exp.model, tx)
    return state, model.initial_state(state.params, tc.batch_size)

  state_sh = sharding.tree_shardings(jax.eval_shape(init)[0], mesh, exp.mesh.fsdp_min_bytes)
  rnn_sh, batch_sh = sharding.state_sharding(mesh), sharding.batch_sharding(mesh)
  step = functools.partial(
    train.train_step,
    cfg=exp.model,
    ex=exp.exec,
    tx=tx,
    microbatches=tc.microbatches,
    mesh=spmd,
    carry_state=tc.carry_state,
  )
  evaluate = functools.partial(
    train.eval_step, cfg=exp.model, ex=exp.exec, buckets=tc.position_buckets, mesh=spmd
  )
  put = lambda b: sharding.global_batch(batch_lib.select(b), mesh, tc.batch_size)
  if exp.exec.frames_on_host:
    put = lambda b: bptt_lib.frames_to_host(
      sharding.global_batch(batch_lib.select(b), mesh, tc.batch_size)
    )
  # The arguments arrive with their shardings (born or restored so, batches made so): jit
  # follows them, and pins what it returns.
  return _Job(
    exp,
    mesh,
    ds,
    jax.jit(init, out_shardings=(state_sh, rnn_sh)),
    jax.jit(
      step, out_shardings=(state_sh, rnn_sh, sharding.replicated(mesh)), donate_argnums=(0, 2)
    ),
    jax.jit(evaluate, out_shardings=sharding.replicated(mesh)),
    put,
    lambda b: sharding.put_global(batch_lib.select(b), batch_sh),
    sharding.process_rows(mesh, tc.batch_size),
  )


def _restore_or_init(job: _Job, ckpt: checkpoint.Checkpointer):
  """(state, rnn, data_state or None) from the newest readable checkpoint, else fresh."""
  state, rnn = job.init()  # also the restore target: shapes and shardings
  restored = ckpt.restore_latest(checkpoint_items(state, rnn))
  if restored is None:
    if job.exp.train.init_from:
      state, rnn = _init_from(job, state, rnn)
    return state, rnn, None
  step, items, data_state = restored
  log.info("resumed from step %d", step)
  return (*_from_items(items), data_state)


def _init_from(job: _Job, state: train.TrainState, rnn):
  """The fresh state with the parameters of `train.init_from` (interop.load_params), placed as
  the fresh ones, and the lane state from their (h0, c0). The optimizer state stays: it is
  born from the parameters' shapes alone (zeros)."""
  path = job.exp.train.init_from
  params = interop.load_params(path, job.exp.model)
  put = lambda x, ref: jax.device_put(np.asarray(x, ref.dtype), ref.sharding)
  params = jax.tree.map(put, params, state.params)
  fresh = model.initial_state(params, job.exp.train.batch_size)
  rnn = jax.tree.map(lambda x, ref: jax.device_put(x, ref.sharding), fresh, rnn)
  log.info("initial parameters from %s", path)
  return state._replace(params=params), rnn


def _evaluate(job: _Job, params, batches) -> dict[str, float]:
  sums = None
  for b in batches:
    out = job.eval(params, b)
    sums = out if sums is None else jax.tree.map(lambda x, y: x + y, sums, out)
  res = train.ratios(jax.device_get(sums), job.exp.train.position_buckets)
  out = {"val_loss": res["loss"]}
  out.update({f"val_loss_pos{i}": b["loss"] for i, b in enumerate(res["buckets"])})
  return out


class _NullWriter:
  """Processes other than 0 write no metrics."""

  def write(self, step, values):
    del step, values

  def close(self):
    pass


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, *, stop_after: int | None = None
) -> dict[str, Any]:
  """Trains to `train.steps` (or, for tests, stops after `stop_after` steps of this call).

  Returns the last logged metrics.
  """
  exp = parse_config(config)
  sharding.initialize_distributed(exp.mesh)  # before any other JAX call; no-op for one process
  wd = epath.Path(workdir)
  if sharding.is_primary():
    wd.mkdir(parents=True, exist_ok=True)
    metrics.write_text(str(wd / "config.json"), config.to_json_best_effort(indent=1))
  job = _build(exp)
  tc = exp.train
  has_val = "validation" in job.ds.splits
  if not has_val:
    log.warning(
      "dataset %s has no validation split: evaluating on fixed train windows "
      "(set data.val_sources or data.val_fraction for held-out data)",
      job.ds.dir,
    )
  eval_data = [
    job.eval_put(b)
    for b in data.eval_batches(
      job.ds,
      "validation" if has_val else "train",
      tc.eval_batch_size,
      tc.eval_seq_len,
      tc.eval_batches,
      vocab_size=exp.model.vocab_size,
      packed=True,
    )
  ]
  ckpt = checkpoint.Checkpointer(str(wd / "checkpoints"), keep=tc.keep_checkpoints)
  try:
    state, rnn, data_state = _restore_or_init(job, ckpt)
    index, count = job.rows
    batches = iter(
      data.train_dataset(
        job.ds,
        tc.batch_size // count,
        tc.seq_len,
        tc.seed,
        put=job.put,
        vocab_size=exp.model.vocab_size,
        max_lane_steps=exp.data.max_lane_steps,
        shard_index=index,
        shard_count=count,
      )
    )
    if data_state is not None:
      batches.set_state(data_state)
    log.info(
      "model: %s parameters; %s windows",
      f"{model.n_params(state.params):,}",
      "carried-state" if tc.carry_state else "fresh (from the learned h0, c0)",
    )
    last = _train(job, state, rnn, batches, eval_data, ckpt, wd, stop_after)
  finally:
    ckpt.close()
  if sharding.is_primary():
    metrics.plot_curves(str(wd / "metrics.jsonl"), str(wd / "loss.png"))
  return last


def _train(
  job: _Job, state, rnn, batches, eval_data, ckpt, wd: epath.Path, stop_after: int | None
) -> dict[str, Any]:
  """The step loop over `batches` (a grain iterator of device batches); returns the last logged
  metrics."""
  tc = job.exp.train
  start = int(state.step)
  end = tc.steps if stop_after is None else min(tc.steps, start + stop_after)
  lr_fn = optim.schedule(job.exp.optim.lr, job.exp.optim, tc.steps)
  writer = metrics.MetricWriter(str(wd)) if sharding.is_primary() else _NullWriter()
  progress = metrics.Progress(tc.steps, start_step=start, disable=not sharding.is_primary())
  deadline = time.monotonic() + tc.max_minutes * 60 if tc.max_minutes else math.inf
  last: dict[str, Any] = {}
  train_log: dict[str, float] = {}
  window = [time.perf_counter(), 0]  # start time and frames of the current logging window

  def save(step, force=False, extra=None):
    ckpt.save(step, checkpoint_items(state, rnn), batches.get_state(), metrics=extra, force=force)

  def check(step, m, t_start, frames):
    """A step's metrics on the host (waits for the step); raises on a non-finite loss."""
    m = {k: float(v) for k, v in jax.device_get(m).items()}
    if not math.isfinite(m["loss"]):
      raise NonFiniteLossError(
        f"non-finite training loss {m['loss']} at step {step}; the last good checkpoint in "
        f"{wd / 'checkpoints'} is kept. Lower optim.lr / optim.muon_lr, raise "
        "optim.warmup_steps or check the data, then rerun to resume from it."
      )
    out = {
      "train_loss": m["loss"],
      "grad_norm": m["grad_norm"],
      "lr": float(lr_fn(step - 1)),
      "frames_per_s": frames / max(time.perf_counter() - t_start, 1e-9),
    }
    peak = (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
    if peak:  # GPU and TPU report it; the CPU does not
      out["peak_mem_gib"] = peak / 2**30
    progress.update(step, loss=m["loss"])
    train_log.update(out)
    last.update(out)

  try:
    with checkpoint.PreemptionGuard() as guard:
      pending = None  # the previous step's metrics, read while this step runs
      for step in range(start + 1, end + 1):
        state, rnn, m = job.step(state, next(batches), rnn)
        window[1] += tc.batch_size * tc.seq_len
        if pending is not None:
          check(*pending)
        pending = (step, m, window[0], window[1])
        stop = sharding.agree({"deadline": time.monotonic() >= deadline, "signal": guard.requested})
        if stop["deadline"]:
          log.warning(
            "train.max_minutes=%g reached at step %d: evaluating, saving, stopping",
            tc.max_minutes,
            step,
          )
        elif stop["signal"]:
          log.warning(
            "%s: saving step %d and exiting",
            guard.signal_name or "a stop signal on another process",
            step,
          )
        evaluate = (
          step % tc.eval_every == 0 or step == tc.steps or step in tc.eval_at or stop["deadline"]
        )
        if step % tc.log_every == 0 or step == end or evaluate or any(stop.values()):
          check(*pending)  # never checkpoint a state whose loss was not checked
          pending = None
          writer.write(step, train_log)
          window[:] = [time.perf_counter(), 0]
        if evaluate:
          ev = _evaluate(job, state.params, eval_data)
          last.update(ev)
          writer.write(step, ev)
          save(step, force=True, extra=ev)
          window[:] = [time.perf_counter(), 0]
        elif step % tc.ckpt_every == 0:
          save(step)
        if any(stop.values()):
          break
      if pending is not None:
        check(*pending)
      save(int(state.step), force=True)
  finally:
    if hasattr(batches, "close"):
      batches.close()  # stops the read-ahead threads
    progress.close()
    writer.close()
  return last
