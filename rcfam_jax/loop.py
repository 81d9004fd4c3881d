"""The training loop: data, jitted steps, evaluation, checkpoints, metrics, guards.

`train_and_evaluate(config, workdir)` is what `python -m rcfam_jax.main` runs. It resumes from
the newest readable checkpoint in `workdir` (train state, carried LSTM lane state and the data
iterator position), saves on SIGTERM/SIGINT before exiting, stops on a non-finite loss keeping
the last good checkpoint, and writes metrics.jsonl, TensorBoard events and loss.png.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rcfam_jax import bptt as bptt_lib
from rcfam_jax import checkpoint, data, metrics, model, optim, prefetch, sharding, train
from rcfam_jax.config import BPTTConfig, DataConfig, MeshConfig, ModelConfig, from_dict

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
  pass


@dataclasses.dataclass(frozen=True)
class Experiment:
  model: ModelConfig
  bptt: BPTTConfig
  optim: optim.OptimConfig
  train: train.TrainConfig
  data: DataConfig
  mesh: MeshConfig = MeshConfig()


def parse_config(config: ml_collections.ConfigDict) -> Experiment:
  """ConfigDict -> frozen dataclasses, with the cross-section checks."""
  c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  missing = [k for k in ("model", "bptt", "optim", "train", "data") if k not in c]
  if missing:
    raise ValueError(f"config lacks section(s) {missing}; start from experiments/common.py")
  extra = sorted(set(c) - {"model", "bptt", "optim", "train", "data", "mesh", "description"})
  if extra:
    raise ValueError(f"unknown config section(s) {extra}")
  exp = Experiment(from_dict(ModelConfig, c["model"]), from_dict(BPTTConfig, c["bptt"]),
                   from_dict(optim.OptimConfig, c["optim"]),
                   from_dict(train.TrainConfig, c["train"]),
                   from_dict(DataConfig, c["data"]), from_dict(MeshConfig, c.get("mesh")))
  if (exp.model.rows, exp.model.cols) != (exp.data.rows, exp.data.cols):
    raise ValueError(f"model frames are {exp.model.rows}x{exp.model.cols} but data frames are "
                     f"{exp.data.rows}x{exp.data.cols}: set model.rows/cols = data.rows/cols")
  return exp


def _keep(batch: dict[str, np.ndarray]):
  return {k: v for k, v in batch.items() if k in ("frames", "actions", "valid", "reset")}


def _device_batch(batch: dict[str, np.ndarray]):
  return {k: jnp.asarray(v) for k, v in _keep(batch).items()}


def _process_data_state(data_state):
  """This process's reader state from a checkpoint's data state (one per process if several)."""
  if not (isinstance(data_state, dict) and "processes" in data_state):
    return data_state
  states = data_state["processes"]
  if len(states) != jax.process_count():
    raise ValueError(f"the checkpoint holds data states of {len(states)} processes, this run has "
                     f"{jax.process_count()}: resume with the same number of processes")
  return states[jax.process_index()]


class _NullWriter:
  """Processes other than 0 write no metrics."""

  def write(self, step, values):
    del step, values

  def close(self):
    pass


def evaluate(eval_fn, params, batches, buckets: int) -> dict[str, float]:
  sums = None
  for b in batches:
    out = eval_fn(params, b)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  sums = jax.tree.map(np.asarray, sums)
  res = {"val_loss": float(sums["loss_sum"] / max(sums["count"], 1.0))}
  for i in range(buckets):
    res[f"val_loss_pos{i}"] = float(sums["bucket_loss_sum"][i] / max(sums["bucket_count"][i], 1.0))
  return res


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after: int | None = None) -> dict[str, Any]:
  """Trains to `train.steps` (or, for tests, stops after `stop_after` steps of this call).

  Returns the last logged metrics.
  """
  exp = parse_config(config)
  tc = exp.train
  sharding.initialize_distributed(exp.mesh)  # before any other JAX call; no-op for one process
  primary = sharding.is_primary()
  os.makedirs(workdir, exist_ok=True)
  if primary:
    metrics.write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=1))
  mesh = sharding.make_mesh(exp.mesh, batch=tc.batch_size)
  spmd = mesh if mesh.size > 1 else None  # one device: exactly the unsharded program
  if spmd is not None and exp.bptt.frames_on_host:
    raise ValueError("bptt.frames_on_host is single-device for now: set it to False on a mesh "
                     f"of {mesh.size} devices")
  if spmd is not None:
    sharding.check_batch(mesh, tc.batch_size // tc.microbatches, tc.seq_len)
    sharding.check_batch(mesh, tc.eval_batch_size, tc.eval_seq_len)
    log.info("mesh %s over %d process(es)", dict(mesh.shape), jax.process_count())
  ds = data.prepare(exp.data)
  if exp.model.vocab_size < ds.n_actions:
    raise ValueError(f"model.vocab_size={exp.model.vocab_size} < {ds.n_actions} actions in the "
                     f"data: raise model.vocab_size to at least {ds.n_actions}")
  has_val = "validation" in ds.splits
  if not has_val:
    log.warning("dataset %s has no validation split: evaluating on fixed train windows "
                "(set data.val_sources or data.val_fraction for held-out data)", ds.dir)
  put = _device_batch if spmd is None else (
      lambda b: sharding.put_global(_keep(b), sharding.batch_sharding(mesh)))
  eval_data = [put(b) for b in data.eval_batches(
      ds, "validation" if has_val else "train", tc.eval_batch_size, tc.eval_seq_len,
      tc.eval_batches)]

  tx = optim.make(exp.optim, tc.steps)
  init = functools.partial(train.init_train_state, jax.random.PRNGKey(tc.seed), exp.model, tx)
  step_fn = functools.partial(train.train_step, cfg=exp.model, bptt=exp.bptt, tx=tx,
                              microbatches=tc.microbatches, mesh=spmd,
                              carry_state=tc.carry_state)
  eval_fn = functools.partial(train.eval_step, cfg=exp.model, bptt=exp.bptt,
                              buckets=tc.position_buckets, mesh=spmd)
  shard_index = shard_count = None
  if spmd is None:
    state = init()
    rnn = model.initial_state(state.params, tc.batch_size)
    step_fn = jax.jit(step_fn, donate_argnums=(0, 2))
    eval_fn = jax.jit(eval_fn)
    put_batch = _device_batch
    if exp.bptt.frames_on_host:
      put_batch = lambda b: bptt_lib.frames_to_host(_device_batch(b))
  else:  # parameters born sharded; batches assembled from each process's own rows
    state_sh = sharding.tree_shardings(jax.eval_shape(init), mesh, exp.mesh.fsdp_min_bytes)
    rnn_sh, batch_sh = sharding.state_sharding(mesh), sharding.batch_sharding(mesh)
    state = jax.jit(init, out_shardings=state_sh)()
    rnn = jax.jit(functools.partial(model.initial_state, batch=tc.batch_size),
                  out_shardings=rnn_sh)(state.params)
    step_fn = jax.jit(step_fn, in_shardings=(state_sh, batch_sh, rnn_sh),
                      out_shardings=(state_sh, rnn_sh, sharding.replicated(mesh)),
                      donate_argnums=(0, 2))
    eval_fn = jax.jit(eval_fn, in_shardings=(state_sh.params, batch_sh),
                      out_shardings=sharding.replicated(mesh))
    shard_index, shard_count = sharding.process_rows(mesh, tc.batch_size)
    put_batch = lambda b: sharding.global_batch(_keep(b), mesh, tc.batch_size)
  local_batch = tc.batch_size // (shard_count or 1)
  reader = data.train_reader(ds, local_batch, tc.seq_len, tc.seed,
                             max_lane_steps=exp.data.max_lane_steps, shard_index=shard_index,
                             shard_count=shard_count)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), keep=tc.keep_checkpoints)
  restored = ckpt.restore_latest({"train": state, "rnn": rnn})  # targets carry the shardings
  if restored is not None:
    step0, tree, data_state = restored
    state, rnn = tree["train"], tree["rnn"]
    reader.set_state(_process_data_state(data_state))
    log.info("resumed from step %d", step0)
  start = int(state.step)
  log.info("model: %s parameters; %s windows", f"{model.n_params(state.params):,}",
           "carried-state" if tc.carry_state else "fresh (from the learned h0, c0)")

  lr_fn = optim.schedule(exp.optim.lr, exp.optim, tc.steps)
  writer = metrics.MetricWriter(workdir) if primary else _NullWriter()
  progress = metrics.Progress(tc.steps, start_step=start)
  end = tc.steps if stop_after is None else min(tc.steps, start + stop_after)
  # Read and transfer the next batches on a thread while the step runs (docs/BENCHMARKS.md:
  # 0.951 -> 0.978 of device-resident throughput on the H200); stops at `end`, so the saved
  # reader state is that of the last batch consumed.
  batches = prefetch.Prefetcher(reader.next_batch, put=put_batch, depth=2,
                                state_fn=reader.get_state, limit=end - start)
  deadline = time.monotonic() + tc.max_minutes * 60 if tc.max_minutes else math.inf
  last: dict[str, Any] = {}
  pending = None  # (step, device metrics) read one step late, so dispatch runs ahead

  def save(step, force=False, extra=None):
    data_state = batches.get_state()
    if jax.process_count() > 1:
      data_state = {"processes": sharding.allgather_json(data_state)}
    ckpt.save(step, {"train": state, "rnn": rnn}, data_state, metrics=extra, force=force)

  def drain(entry):
    step, m, t_start, frames = entry
    m = {k: float(v) for k, v in jax.device_get(m).items()}
    if not math.isfinite(m["loss"]):
      raise NonFiniteLossError(
          f"non-finite training loss {m['loss']} at step {step}; the last good checkpoint in "
          f"{workdir}/checkpoints is kept. Lower optim.lr / optim.muon_lr, raise "
          "optim.warmup_steps or check the data, then rerun to resume from it.")
    out = {"train_loss": m["loss"], "grad_norm": m["grad_norm"], "lr": float(lr_fn(step - 1)),
           "frames_per_s": frames / max(time.perf_counter() - t_start, 1e-9)}
    peak = (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
    if peak:  # GPU and TPU report it; the CPU does not
      out["peak_mem_gib"] = peak / 2**30
    progress.update(step, loss=m["loss"])
    return out

  window = [time.perf_counter(), 0]  # start time and frames of the current logging window

  train_log: dict[str, float] = {}

  def flush_pending():
    nonlocal pending
    if pending is not None:
      train_log.update(drain(pending))
      last.update(train_log)
      pending = None

  try:
    with checkpoint.PreemptionGuard() as guard:
      for step in range(start + 1, end + 1):
        batch = next(batches)
        state, rnn, m = step_fn(state, batch, rnn)
        window[1] += tc.batch_size * tc.seq_len
        flush_pending()  # the previous step's metrics, read while this one runs
        pending = (step, m, window[0], window[1])
        out_of_time = time.monotonic() >= deadline
        if out_of_time:
          log.warning("train.max_minutes=%g reached at step %d: evaluating, saving, stopping",
                      tc.max_minutes, step)
        if step % tc.log_every == 0 or step == end or out_of_time:
          flush_pending()
          writer.write(step, train_log)
          window[:] = [time.perf_counter(), 0]
        if (step % tc.eval_every == 0 or step == tc.steps or step in tc.eval_at
            or out_of_time):
          flush_pending()  # never checkpoint a state whose loss was not checked
          ev = evaluate(eval_fn, state.params, eval_data, tc.position_buckets)
          last.update(ev)
          writer.write(step, ev)
          save(step, force=True, extra=ev)
          window[:] = [time.perf_counter(), 0]
        elif step % tc.ckpt_every == 0:
          flush_pending()
          save(step)
        if out_of_time:
          break
        if guard.requested:
          log.warning("%s received: saving step %d and exiting", guard.signal_name, step)
          break
      flush_pending()
      save(int(state.step), force=True)
  finally:
    batches.close()
    progress.close()
    ckpt.close()
    writer.close()
  if primary:
    metrics.plot_curves(os.path.join(workdir, "metrics.jsonl"), os.path.join(workdir, "loss.png"))
  return last
