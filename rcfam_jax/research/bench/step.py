"""Training-step worker: throughput, MFU, peak memory, data feed, sweep; compile-only memory.

Job (JSON) fields: T, batch, m / b (ModelConfig / ExecConfig overrides), steps (timed steps;
0 times only the first step), matmul_n (0: skip), data (dataset dir or null), data_tokenizer;
for `sweep`: sweep (list of {label, m, b}), base_fps (the throughput line's frames/s).
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from rcfam_jax import batch as batch_lib
from rcfam_jax import model, train
from rcfam_jax.research.bench import common


def run_loop(step, state, rnn, next_batch, n: int):
  """n steps as loop.py runs them: dispatch step k, then read step k-1's metrics.

  Returns (state, rnn, wall seconds, per-step seconds between metric reads, last metrics).
  """
  pending, marks, m = None, [], None
  t0 = time.perf_counter()
  for _ in range(n):
    batch = next_batch()
    state, rnn, m = step(state, batch, rnn)
    if pending is not None:
      jax.device_get(pending)
      marks.append(time.perf_counter())
    pending = m
  if pending is not None:
    jax.device_get(pending)
  marks.append(time.perf_counter())
  gaps = np.diff([t0] + marks).tolist()
  return state, rnn, marks[-1] - t0, gaps, m


def _setup(cfg, bcfg, job):
  """Train state, initial LSTM state and the step compiled for job's batch, T, frames (packed)
  and window regime (carry_state), and the compile seconds."""
  b, t, packed = job["batch"], job["T"], job.get("packed", True)
  tx = common.adamw()
  key = jax.random.PRNGKey(0)
  state = train.init_train_state(key, cfg, tx)
  rnn = model.initial_state(state.params, b)
  step = common.make_step(cfg, bcfg, tx, job.get("carry_state", False))
  t0 = time.perf_counter()
  spec = common.batch_spec(cfg, b, t, bcfg.frames_on_host, packed)
  compiled = step.lower(state, spec, rnn).compile()
  return state, rnn, compiled, time.perf_counter() - t0


def _first_step(compiled, state, rnn, batch):
  t0 = time.perf_counter()
  state, rnn, m = compiled(state, batch, rnn)
  loss = float(m["loss"])
  return state, rnn, time.perf_counter() - t0, loss


def train_job(job: dict):
  b, t, steps, packed = job["batch"], job["T"], job["steps"], job.get("packed", True)
  cfg, bcfg = common.configs(job.get("m", {}), job.get("b", {}))
  info = common.device_info()
  state, rnn, compiled, compile_s = _setup(cfg, bcfg, job)
  mem = common.memory_fields(compiled)
  batch = common.random_batch(1, cfg, b, t, bcfg.frames_on_host, packed=packed)
  jax.block_until_ready(batch)
  before = common.allocator_fields()["peak_bytes"]  # state + batch: nothing of the step yet
  state, rnn, first_s, loss = _first_step(compiled, state, rnn, batch)
  wall, gaps, blocked = first_s, [first_s], [first_s]
  if steps > 0:
    state, rnn, wall, gaps, m = run_loop(compiled, state, rnn, lambda batch=batch: batch, steps)
    loss = float(m["loss"])
    blocked = []
    for _ in range(steps):  # each step waited for: the figure without any overlap
      t0 = time.perf_counter()
      state, rnn, m = jax.block_until_ready(compiled(state, batch, rnn))
      blocked.append(time.perf_counter() - t0)
  n_steps = max(steps, 1)
  fps = n_steps * b * t / wall
  alloc = common.allocator_fields()  # before the matmul peak and the feed touch the allocator
  fwd = cfg.forward_flops_per_frame()
  common.emit(
    "train",
    **({"part": job["part"]} if "part" in job else {}),
    T=t,
    batch=b,
    steps=n_steps,
    timed="loop" if steps else "first step",
    step_s=round(wall / n_steps, 4),
    step_s_each=[round(g, 4) for g in gaps],
    frames_per_s=round(fps, 1),
    blocked_step_s=round(float(np.median(blocked)), 4),
    blocked_frames_per_s=round(b * t / float(np.median(blocked)), 1),
    first_step_s=round(first_s, 4),
    **alloc,
    peak_before_step_bytes=before,
    **mem,
    frames_bytes=int(batch["frames"].nbytes),
    frames="packed" if packed else "contract",
    params=int(sum(x.size for x in jax.tree.leaves(state.params))),
    fwd_gflop_per_frame=round(fwd / 1e9, 3),
    loss=round(loss, 4),
    compile_s=round(compile_s, 1),
    **info,
    config={**dataclasses.asdict(cfg), **dataclasses.asdict(bcfg)},
  )
  if job.get("matmul_n"):
    peak = common.matmul_peak(job["matmul_n"])
    common.emit("matmul_peak", n=peak["n"], tflops=round(peak["tflops"], 1), **info)
    model_tflops = 3 * fwd * fps / 1e12
    spec = common.spec_peak(info["device"])
    common.emit(
      "mfu",
      T=t,
      frames_per_s=round(fps, 1),
      model_tflops=round(model_tflops, 2),
      matmul_peak_tflops=round(peak["tflops"], 1),
      mfu=round(model_tflops / peak["tflops"], 4),
      mfu_spec=round(model_tflops * 1e12 / spec, 4) if spec else None,
      hfu_with_recompute=round(4 / 3 * model_tflops / peak["tflops"], 4),
      note="model FLOPs = 3 x forward matmul FLOPs per frame; hfu counts the "
      "recomputed frame-head forward (4x)",
    )
  if job.get("data"):
    try:
      state, rnn = feed_job(job, cfg, bcfg, state, rnn)
    except Exception as e:  # report, keep the other measurements
      common.emit("feed", error=f"{type(e).__name__}: {str(e)[:300]}")
  del state, rnn, compiled, batch


def feed_job(job, cfg, bcfg, state, rnn):
  """The training step fed as loop.py feeds it (data.train_dataset: the grain pipeline of
  packed uint16 cells, read ahead and transferred on threads), against the same step on one
  device-resident packed batch, and the reader inline (read and transfer between steps)."""
  from rcfam_jax import data

  b, t, n = job["batch"], job["T"], max(job.get("feed_steps") or job["steps"], 2)
  if not os.path.exists(os.path.join(job["data"], "segments.json")):
    common.emit(
      "feed",
      skipped=f"no dataset at {job['data']!r} (gitignored: build it with "
      f"`make data` or carry it to the device machine)",
    )
    return state, rnn
  ds = data.open_built(job["data"], tokenizer_size=job.get("data_tokenizer", 0))
  put = lambda h: jax.device_put(batch_lib.select(h))
  reader = data.train_reader(ds, b, t, seed=0, packed=True)
  t0 = time.perf_counter()
  host = [reader.next_batch() for _ in range(2)]  # also warms the reader's record caches
  read_s = (time.perf_counter() - t0) / 2
  step = common.make_step(cfg, bcfg, common.adamw(), job.get("carry_state", False))  # packed
  resident = put(host[0])
  state, rnn, _, _ = _first_step(step, state, rnn, resident)
  out = {}
  state, rnn, wall, _, _ = run_loop(step, state, rnn, lambda: resident, n)
  out["resident"] = n * b * t / wall
  state, rnn, wall, _, _ = run_loop(step, state, rnn, lambda: put(reader.next_batch()), n)
  out["reader_inline"] = n * b * t / wall
  pipe = iter(data.train_dataset(ds, b, t, seed=0, put=put))
  next(pipe)  # the threads started, their buffers filled
  state, rnn, wall, _, _ = run_loop(step, state, rnn, lambda: next(pipe), n)
  pipe.close()
  out["grain_pipeline"] = n * b * t / wall
  common.emit(
    "feed",
    T=t,
    batch=b,
    steps=n,
    dataset=job["data"],
    host_read_s=round(read_s, 4),
    host_frames_per_s=round(b * t / read_s, 1),
    host_batch_bytes=int(sum(v.nbytes for v in batch_lib.select(host[1]).values())),
    **{f"{k}_frames_per_s": round(v, 1) for k, v in out.items()},
    inline_ratio=round(out["reader_inline"] / out["resident"], 4),
    pipeline_ratio=round(out["grain_pipeline"] / out["resident"], 4),
  )
  return state, rnn


def sweep(job):  # bench.py's `sweep` worker (it starts one process per point)
  """Config variants (job['sweep'] points) at the same T, each against job['base_fps']."""
  b, t, steps = job["batch"], job["T"], max(1, min(job["steps"], 2))
  packed = job.get("packed", True)
  for point in job["sweep"]:
    try:
      cfg, bcfg = common.configs(
        {**job.get("m", {}), **point.get("m", {})}, {**job.get("b", {}), **point.get("b", {})}
      )
      state, rnn, compiled, compile_s = _setup(cfg, bcfg, job)
      mem = common.memory_fields(compiled)
      batch = common.random_batch(1, cfg, b, t, bcfg.frames_on_host, packed=packed)
      state, rnn, _, _ = _first_step(compiled, state, rnn, batch)
      state, rnn, wall, _, _ = run_loop(compiled, state, rnn, lambda batch=batch: batch, steps)
      fps = steps * b * t / wall
      vs_torch = {"vs_torch": round(fps / job["torch_fps"], 4)} if job.get("torch_fps") else {}
      common.emit(
        "sweep",
        label=point["label"],
        T=t,
        batch=b,
        frames_per_s=round(fps, 1),
        vs_base=round(fps / job["base_fps"], 4),
        **vs_torch,
        compile_s=round(compile_s, 1),
        temp_bytes=mem.get("temp_bytes"),
        head_chunk=bcfg.head_chunk,
        head_remat=bcfg.head_remat,
        attention_impl=bcfg.attention_impl,
        conv_impl=bcfg.conv_impl,
      )
      del state, rnn, compiled, batch
    except Exception as e:  # e.g. out of memory at a large chunk: report, go on
      common.emit("sweep", label=point["label"], error=f"{type(e).__name__}: {str(e)[:300]}")


def compile_job(job: dict):
  """Memory analysis of the step at (B, T) from abstract shapes: no arrays are allocated."""
  b, t = job["batch"], job["T"]
  cfg, bcfg = common.configs(job.get("m", {}), job.get("b", {}))
  tx = common.adamw()
  state = jax.eval_shape(lambda k: train.init_train_state(k, cfg, tx), jax.random.PRNGKey(0))
  rnn = jax.eval_shape(lambda p: model.initial_state(p, b), state.params)
  t0 = time.perf_counter()
  packed = job.get("packed", True)
  spec = common.batch_spec(cfg, b, t, bcfg.frames_on_host, packed)
  carry = job.get("carry_state", False)
  compiled = common.make_step(cfg, bcfg, tx, carry).lower(state, spec, rnn).compile()
  shape, dtype = common.frames_shape(cfg, b, t, packed)
  common.emit(
    "compile_memory",
    T=t,
    batch=b,
    compile_s=round(time.perf_counter() - t0, 1),
    **common.memory_fields(compiled),
    bytes_limit=common.allocator_fields()["bytes_limit"],
    frames_bytes=int(np.prod(shape)) * np.dtype(dtype).itemsize,
    **common.device_info(),
  )
