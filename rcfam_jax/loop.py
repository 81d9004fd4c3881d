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

from rcfam_jax import checkpoint, data, metrics, model, optim, train
from rcfam_jax.config import BPTTConfig, DataConfig, ModelConfig, from_dict

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


def parse_config(config: ml_collections.ConfigDict) -> Experiment:
  """ConfigDict -> frozen dataclasses, with the cross-section checks."""
  c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  missing = [k for k in ("model", "bptt", "optim", "train", "data") if k not in c]
  if missing:
    raise ValueError(f"config lacks section(s) {missing}; start from experiments/common.py")
  extra = sorted(set(c) - {"model", "bptt", "optim", "train", "data", "description"})
  if extra:
    raise ValueError(f"unknown config section(s) {extra}")
  exp = Experiment(from_dict(ModelConfig, c["model"]), from_dict(BPTTConfig, c["bptt"]),
                   from_dict(optim.OptimConfig, c["optim"]),
                   from_dict(train.TrainConfig, c["train"]),
                   from_dict(DataConfig, c["data"]))
  if (exp.model.rows, exp.model.cols) != (exp.data.rows, exp.data.cols):
    raise ValueError(f"model frames are {exp.model.rows}x{exp.model.cols} but data frames are "
                     f"{exp.data.rows}x{exp.data.cols}: set model.rows/cols = data.rows/cols")
  return exp


def _device_batch(batch: dict[str, np.ndarray]):
  keep = ("frames", "actions", "valid", "reset")
  return {k: jnp.asarray(v) for k, v in batch.items() if k in keep}


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
  os.makedirs(workdir, exist_ok=True)
  tmp = os.path.join(workdir, f"config.json.tmp{os.getpid()}")
  with open(tmp, "w") as f:
    f.write(config.to_json_best_effort(indent=1))
  os.replace(tmp, os.path.join(workdir, "config.json"))
  ds = data.prepare(exp.data)
  if exp.model.vocab_size < ds.n_actions:
    raise ValueError(f"model.vocab_size={exp.model.vocab_size} < {ds.n_actions} actions in the "
                     f"data: raise model.vocab_size to at least {ds.n_actions}")
  has_val = "validation" in ds.splits
  if not has_val:
    log.warning("dataset %s has no validation split: evaluating on fixed train windows "
                "(set data.val_sources or data.val_fraction for held-out data)", ds.dir)
  eval_data = [_device_batch(b) for b in data.eval_batches(
      ds, "validation" if has_val else "train", tc.eval_batch_size, tc.eval_seq_len,
      tc.eval_batches)]

  tx = optim.make(exp.optim, tc.steps)
  state = train.init_train_state(jax.random.PRNGKey(tc.seed), exp.model, tx)
  rnn = model.initial_state(state.params, tc.batch_size)
  reader = data.train_reader(ds, tc.batch_size, tc.seq_len, tc.seed,
                             max_lane_steps=exp.data.max_lane_steps)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), keep=tc.keep_checkpoints)
  restored = ckpt.restore_latest({"train": state, "rnn": rnn})
  if restored is not None:
    step0, tree, data_state = restored
    state, rnn = tree["train"], tree["rnn"]
    reader.set_state(data_state)
    log.info("resumed from step %d", step0)
  start = int(state.step)

  step_fn = jax.jit(functools.partial(train.train_step, cfg=exp.model, bptt=exp.bptt, tx=tx,
                                      microbatches=tc.microbatches), donate_argnums=(0, 2))
  eval_fn = jax.jit(functools.partial(train.eval_step, cfg=exp.model, bptt=exp.bptt,
                                      buckets=tc.position_buckets))
  lr_fn = optim.schedule(exp.optim.lr, exp.optim, tc.steps)
  writer = metrics.MetricWriter(workdir)
  progress = metrics.Progress(tc.steps, start_step=start)
  end = tc.steps if stop_after is None else min(tc.steps, start + stop_after)
  deadline = time.monotonic() + tc.max_minutes * 60 if tc.max_minutes else math.inf
  last: dict[str, Any] = {}
  pending = None  # (step, device metrics) read one step late, so dispatch runs ahead

  def save(step, force=False, extra=None):
    ckpt.save(step, {"train": state, "rnn": rnn}, reader.get_state(),
              metrics=extra, force=force)

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
        batch = _device_batch(reader.next_batch())
        state, rnn, m = step_fn(state, batch, rnn)
        window[1] += tc.batch_size * tc.seq_len
        flush_pending()  # the previous step's metrics, read while this one runs
        pending = (step, m, window[0], window[1])
        if step % tc.log_every == 0 or step == end:
          flush_pending()
          writer.write(step, train_log)
          window[:] = [time.perf_counter(), 0]
        out_of_time = time.monotonic() >= deadline
        if out_of_time:
          log.warning("train.max_minutes=%g reached at step %d: evaluating, saving, stopping",
                      tc.max_minutes, step)
        if step % tc.eval_every == 0 or step == tc.steps or out_of_time:
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
    progress.close()
    ckpt.close()
    writer.close()
  metrics.plot_curves(os.path.join(workdir, "metrics.jsonl"), os.path.join(workdir, "loss.png"))
  return last
