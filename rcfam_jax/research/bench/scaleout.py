"""Scale-out benchmark: the training step on 1 device, then on all N visible devices.

  python -m rcfam_jax.research.bench.scaleout [--seq-len 512] [--batch-per-device 16] [f=v ...]
  python -m rcfam_jax.research.bench.scaleout --devices-cpu 2 --seq-len 8 rows=8 cols=16 ...

The same per-device batch on each (global batch = batch_per_device x devices), the reference
configuration of rcfam_jax/research/bench/cli.py unless fields are overridden (ModelConfig /
ExecConfig names, as in the bench). Each measurement runs in a fresh subprocess (an honest
allocator peak; this process never touches an accelerator) and prints one JSON line; a table
with the speed-up N-device / 1-device follows. One device runs the unsharded step; N devices
run the sharded one (sharding.py: frame head over all devices, LSTM data-parallel, parameters by
the FSDP rule).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time


def _worker(args, m_over, b_over) -> dict:
  import jax

  from rcfam_jax import model, sharding, train
  from rcfam_jax.config import MeshConfig
  from rcfam_jax.research.bench import common

  jax.config.update("jax_threefry_partitionable", True)
  devices = jax.devices()[: args.n] if args.n else jax.devices()
  n = len(devices)
  cfg, bcfg = common.configs(m_over, b_over)  # bench.py's reference config (cuDNN on GPU)
  b, t = args.batch_per_device * n, args.seq_len
  tx = common.adamw(args.lr)
  init = functools.partial(train.init_train_state, jax.random.PRNGKey(0), cfg, tx)
  mesh = sharding.make_mesh(MeshConfig(fsdp=args.fsdp if n > 1 else 1), batch=b, devices=devices)
  spmd = mesh if n > 1 else None
  state_sh = sharding.tree_shardings(jax.eval_shape(init), mesh, args.fsdp_min_bytes)
  batch_sh, rnn_sh = sharding.batch_sharding(mesh), sharding.state_sharding(mesh)

  state = jax.jit(init, out_shardings=state_sh)()
  data = common.random_batch(1, cfg, b, t, sharding=batch_sh, packed=False)
  rnn = jax.jit(lambda p: model.initial_state(p, b), out_shardings=rnn_sh)(state.params)
  step = jax.jit(
    functools.partial(
      train.train_step, cfg=cfg, ex=bcfg, tx=tx, mesh=spmd, carry_state=args.carry_state
    ),
    in_shardings=(state_sh, batch_sh, rnn_sh),
    out_shardings=(state_sh, rnn_sh, sharding.replicated(mesh)),
    donate_argnums=(0,),
  )
  t0 = time.perf_counter()
  compiled = step.lower(state, data, rnn).compile()
  compile_s = time.perf_counter() - t0
  state, _, metrics = compiled(state, data, rnn)  # warm-up
  jax.block_until_ready(metrics)
  times = []
  for _ in range(args.steps):
    t0 = time.perf_counter()
    state, _, metrics = compiled(state, data, rnn)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devices]
  return {
    "devices": n,
    "mesh": dict(mesh.shape),
    "global_batch": b,
    "T": t,
    "step_s": round(step_s, 4),
    "frames_per_s": round(b * t / step_s, 1),
    "peak_bytes": max(peaks) if None not in peaks else None,
    "loss": round(float(metrics["loss"]), 4),
    "compile_s": round(compile_s, 1),
    "device": devices[0].device_kind,
    "backend": jax.default_backend(),
    "config": {**dataclasses.asdict(cfg), **dataclasses.asdict(bcfg)},
  }


def _table(rows) -> str:
  base = rows[0]["frames_per_s"]
  lines = [
    f"{'devices':>7} {'mesh':>20} {'global_batch':>12} {'step_s':>8} {'frames/s':>10} "
    f"{'peak_GiB':>8} {'speed-up':>8} {'efficiency':>10}"
  ]
  for r in rows:
    peak = f"{r['peak_bytes'] / 2**30:.2f}" if r["peak_bytes"] else "-"
    up = r["frames_per_s"] / base
    lines.append(
      f"{r['devices']:>7} {json.dumps(r['mesh']):>20} {r['global_batch']:>12} "
      f"{r['step_s']:>8.3f} {r['frames_per_s']:>10.1f} {peak:>8} {up:>8.2f}x "
      f"{up / r['devices']:>10.2f}"
    )
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--seq-len", type=int, default=512, help="T")
  p.add_argument("--batch-per-device", type=int, default=16)
  p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
  p.add_argument("--lr", type=float, default=1e-4)
  p.add_argument("--fsdp", type=int, default=1, help="mesh.fsdp on N devices (1: pure data)")
  p.add_argument("--fsdp-min-bytes", type=int, default=4 << 20)
  p.add_argument("--devices", type=int, default=0, help="N (0: all visible devices)")
  p.add_argument(
    "--carry-state",
    action="store_true",
    help="carried-state step (as the 2026-11-28 figures); default: fresh windows, as training",
  )
  p.add_argument(
    "--devices-cpu",
    type=int,
    default=0,
    help="simulate this many CPU devices (XLA_FLAGS host device count, JAX_PLATFORMS=cpu)",
  )
  p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
  p.add_argument("overrides", nargs="*", help="ModelConfig/ExecConfig field=value")
  args = p.parse_args(argv)
  if args.worker is not None:  # only workers import JAX: this process never holds a device
    from rcfam_jax.research.bench.common import parse_overrides

    args.n = args.worker
    print(json.dumps(_worker(args, *parse_overrides(args.overrides))), flush=True)
    return
  env = dict(os.environ)
  if args.devices_cpu:
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = (
      env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices_cpu}"
    ).strip()
  rows = []
  for n in (1, args.devices):  # 0 = all visible (counted by the worker itself)
    cmd = [
      sys.executable,
      "-m",
      "rcfam_jax.research.bench.scaleout",
      "--worker",
      str(n),
      "--seq-len",
      str(args.seq_len),
      "--batch-per-device",
      str(args.batch_per_device),
      "--steps",
      str(args.steps),
      "--lr",
      str(args.lr),
      "--fsdp",
      str(args.fsdp),
      "--fsdp-min-bytes",
      str(args.fsdp_min_bytes),
      *(["--carry-state"] if args.carry_state else []),
      *args.overrides,
    ]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    if rows and row["devices"] == 1:
      break  # only one device visible
    print(json.dumps(row), flush=True)
    rows.append(row)
  print(_table(rows), flush=True)


if __name__ == "__main__":
  main()
