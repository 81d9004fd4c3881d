"""Shared pieces of the benchmark workers: configs, JSON output, timing, matmul peak, memory."""

from __future__ import annotations

import functools
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from data_pipelines import codec
from rcfam_jax import batch as batch_lib
from rcfam_jax import bptt, config, train
from rcfam_jax.config import ExecConfig, ModelConfig, from_dict

SPEC_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}  # dense bf16, NVIDIA's datasheet
BATCH_KEYS = batch_lib.FIELDS  # what loop.py feeds the step


def parse_overrides(items):
  """['d_model=256', 'head_chunk=32', ...] -> (ModelConfig overrides, ExecConfig overrides)."""
  try:
    return config.parse_overrides(items)
  except ValueError as e:
    raise SystemExit(str(e)) from None


def configs(m_over: dict, b_over: dict) -> tuple[ModelConfig, ExecConfig]:
  """The defaults (what every experiment gets) with the run's overrides."""
  return from_dict(ModelConfig, m_over), from_dict(ExecConfig, b_over)


def emit(kind: str, **fields):
  """One JSON line on stdout (the driver collects these)."""
  print(json.dumps({"kind": kind, **fields}, default=str), flush=True)


def device_info() -> dict:
  d = jax.devices()[0]
  return {"device": d.device_kind, "backend": jax.default_backend(), "jax": jax.__version__}


def spec_peak(device_kind: str) -> float | None:
  return next((v for k, v in SPEC_BF16_FLOPS.items() if k in device_kind), None)


def make_step(cfg: ModelConfig, bcfg: ExecConfig, tx, carry_state: bool = False):
  """The jitted train step exactly as loop.py builds it (state and LSTM state donated).

  carry_state: False (the training default, `train.carry_state`, and the author's regime)
  starts every window from the learned (h0, c0); True starts it from the carried state."""
  return jax.jit(
    functools.partial(train.train_step, cfg=cfg, ex=bcfg, tx=tx, carry_state=carry_state),
    donate_argnums=(0, 2),
  )


def frames_shape(cfg: ModelConfig, b: int, t: int, packed: bool):
  """(shape, dtype) of a batch's frames: packed uint16 cells (B, T, rows, cols), as loop.py
  feeds them, or contract frames (B, T, rows, cols, 7) uint8."""
  if packed:
    return (b, t, cfg.rows, cfg.cols), np.uint16
  return (b, t) + cfg.frame_shape, np.uint8


def batch_spec(cfg: ModelConfig, b: int, t: int, host: bool, packed: bool) -> dict:
  """Abstract shapes of a training batch (the reader's keys that loop.py keeps).

  host: frames in pinned host memory (ExecConfig.frames_on_host); packed: see frames_shape.
  """
  s = jax.ShapeDtypeStruct
  shape, dtype = frames_shape(cfg, b, t, packed)
  frames = s(shape, dtype, sharding=bptt.host_sharding() if host else None)
  return {
    "frames": frames,
    "actions": s((b, t), jnp.int32),
    "valid": s((b, t), jnp.bool_),
    "reset": s((b, t), jnp.bool_),
  }


def random_batch(
  seed: int, cfg: ModelConfig, b: int, t: int, host: bool = False, sharding=None, *, packed: bool
) -> dict:
  """Random frames/actions, all positions valid, no resets; packed: see frames_shape.

  Frames are drawn on the host (numpy) and copied once: drawing them on the device would
  leave a 4-byte-per-cell random-bits transient in the allocator's peak
  (docs/BENCHMARKS.md §4).
  host: frames in pinned host memory (ExecConfig.frames_on_host); sharding: put every array
  there instead (a NamedSharding of the batch).
  """
  rng = np.random.default_rng(seed)
  shape, dtype = frames_shape(cfg, b, t, packed)
  out = {
    "frames": rng.integers(0, len(codec.CELL_LUT) if packed else 256, shape, dtype),
    "actions": rng.integers(0, cfg.vocab_size, (b, t), np.int32),
    "valid": np.ones((b, t), bool),
    "reset": np.zeros((b, t), bool),
  }
  if sharding is not None:
    return jax.device_put(out, sharding)
  frames = out.pop("frames")
  out = jax.device_put(out)
  if host:  # numpy straight to pinned host memory: no device copy of the frames
    return bptt.frames_to_host({**out, "frames": frames})
  return {**out, "frames": jax.device_put(frames)}


def memory_fields(compiled) -> dict:
  """XLA's compiled memory analysis: argument/output/temp bytes and their live total."""
  m = compiled.memory_analysis()
  if m is None:
    return {}
  out = {
    k: int(getattr(m, f"{k}_size_in_bytes", 0) or 0)
    for k in ("argument", "output", "alias", "temp", "generated_code")
  }
  out = {f"{k}_bytes": v for k, v in out.items()}
  out["compiled_total_bytes"] = (
    out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
  )
  return out


def allocator_fields() -> dict:
  s = jax.devices()[0].memory_stats() or {}
  return {"peak_bytes": s.get("peak_bytes_in_use"), "bytes_limit": s.get("bytes_limit")}


def time_fn(fn, reps: int) -> list[float]:
  """Wall seconds of `reps` calls, each waited for; one warm-up call first."""
  jax.block_until_ready(fn())
  out = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - t0)
  return out


def matmul_peak(n: int, reps: int = 10) -> dict:
  """Throughput of an n^3 bf16 matmul (f32 accumulation) in TFLOP/s: the attainable peak."""
  ka, kb = jax.random.split(jax.random.PRNGKey(1))
  a = jax.random.normal(ka, (n, n), jnp.bfloat16)
  b = jax.random.normal(kb, (n, n), jnp.bfloat16)
  f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(a.dtype))
  s = statistics.median(time_fn(lambda: f(a, b), reps))
  return {"n": n, "seconds": s, "tflops": 2 * n**3 / s / 1e12}


def log(msg: str):
  print(f"[bench] {msg}", file=sys.stderr, flush=True)


def adamw(lr: float = 1e-4):
  return optax.adamw(lr)
