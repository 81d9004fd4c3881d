"""Training-step benchmark: one JSON line per sequence length T.

  python -m rcfam_jax.bench --seq-lens 128,512,2048 [field=value ...]

Fields are ModelConfig / BPTTConfig names (e.g. d_model=256 head_chunk=32 lstm_remat=nested).
Each T runs in a fresh process (so `peak_bytes`, the allocator's high-water mark, is that T's
own) and times one full step (forward, backward, AdamW update) after a warm-up, on random
frames and actions resident on the device. No model quality is implied.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import optax

from rcfam_jax import model, train
from rcfam_jax.config import BPTTConfig, ModelConfig, from_dict

BENCH_DEFAULTS = {"attention_impl": "cudnn"}  # on GPU; falls back to JAX's choice elsewhere


def parse_overrides(items):
  model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
  bptt_fields = {f.name for f in dataclasses.fields(BPTTConfig)}
  m, b = {}, {}
  for item in items:
    if "=" not in item:
      raise SystemExit(f"override {item!r} is not field=value (e.g. d_model=256)")
    k, v = item.split("=", 1)
    try:
      v = json.loads(v)
    except json.JSONDecodeError:
      pass  # a bare string such as bfloat16
    if k in model_fields:
      m[k] = v
    elif k in bptt_fields:
      b[k] = v
    else:
      raise SystemExit(f"unknown field {k!r}; ModelConfig: {sorted(model_fields)}; "
                       f"BPTTConfig: {sorted(bptt_fields)}")
  return m, b


def run_one(t: int, batch: int, steps: int, m_over: dict, b_over: dict, lr: float) -> dict:
  defaults = dict(BENCH_DEFAULTS) if jax.default_backend() == "gpu" else {}
  cfg = from_dict(ModelConfig, defaults, **m_over)
  bcfg = from_dict(BPTTConfig, b_over)
  tx = optax.adamw(lr)
  key = jax.random.PRNGKey(0)
  state = train.init_train_state(key, cfg, tx)
  k1, k2 = jax.random.split(key)
  frames = jax.random.randint(k1, (batch, t) + cfg.frame_shape, 0, 256, jnp.int32).astype(jnp.uint8)
  data = {"frames": frames, "actions": jax.random.randint(k2, (batch, t), 0, cfg.vocab_size)}
  rnn = model.initial_state(state.params, batch)
  step = jax.jit(functools.partial(train.train_step, cfg=cfg, bptt=bcfg, tx=tx),
                 donate_argnums=(0,))
  t0 = time.perf_counter()
  compiled = step.lower(state, data, rnn).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  state, _, metrics = compiled(state, data, rnn)  # warm-up
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, _, metrics = compiled(state, data, rnn)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  stats = jax.devices()[0].memory_stats() or {}
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  return {
      "T": t, "batch": batch, "step_s": round(step_s, 4),
      "frames_per_s": round(t * batch / step_s, 1),
      "peak_bytes": stats.get("peak_bytes_in_use"),
      "temp_bytes": getattr(mem, "temp_size_in_bytes", None),
      "frames_bytes": int(frames.size), "params": int(n_params),
      "fwd_gflop_per_frame": round(cfg.forward_flops_per_frame() / 1e9, 3),
      "loss": round(float(metrics["loss"]), 4), "compile_s": round(compile_s, 1),
      "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
      "config": {**dataclasses.asdict(cfg), **dataclasses.asdict(bcfg)},
  }


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--seq-lens", default="128,512,2048")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--steps", type=int, default=5, help="timed steps per T (median reported)")
  p.add_argument("--lr", type=float, default=1e-4)
  p.add_argument("--in-process", action="store_true",
                 help="run every T in this process (peak_bytes is then cumulative)")
  p.add_argument("overrides", nargs="*", help="ModelConfig/BPTTConfig field=value")
  args = p.parse_args(argv)
  m_over, b_over = parse_overrides(args.overrides)
  lens = sorted(int(x) for x in args.seq_lens.split(","))
  if args.in_process or len(lens) == 1:
    for t in lens:
      print(json.dumps(run_one(t, args.batch, args.steps, m_over, b_over, args.lr)), flush=True)
    return
  for t in lens:  # one fresh process per T: an honest per-T allocator peak
    cmd = [sys.executable, "-m", "rcfam_jax.bench", "--seq-lens", str(t), "--batch",
           str(args.batch), "--steps", str(args.steps), "--lr", str(args.lr), *args.overrides]
    subprocess.run(cmd, check=True)


if __name__ == "__main__":
  main()
