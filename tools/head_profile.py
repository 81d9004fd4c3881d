"""Diagnostic: which GPU kernels one frame-head chunk's forward and backward spends its time in.

  python tools/head_profile.py [--frames 512] [--reps 5] [--top 30] [--part head|attention]
      [--out DIR] [field=value ...]

Runs the part (the whole head, or the attention stack on its downsampled input) forward and
backward (a VJP with a random cotangent, as the bench's breakdown does) under jax.profiler,
then reads the Perfetto trace it wrote and prints the device kernels by total time: count,
total and mean microseconds per repetition, share of the device time. --out keeps the trace.
"""

import argparse
import collections
import gzip
import json
import pathlib
import shutil
import tempfile


def kernel_table(trace_path: pathlib.Path, reps: int) -> list[tuple[str, int, float]]:
  """[(kernel name, calls per rep, microseconds per rep)] from a Perfetto / Chrome trace, device
  threads only (processes named after a GPU or a stream), largest first."""
  events = json.loads(gzip.open(trace_path).read())
  events = events.get("traceEvents", events)
  names = {
    e["pid"]: e["args"]["name"]
    for e in events
    if e.get("ph") == "M" and e.get("name") == "process_name"
  }
  device = {pid for pid, n in names.items() if "GPU" in n or "gpu" in n or "stream" in n.lower()}
  total, count = collections.Counter(), collections.Counter()
  for e in events:
    if e.get("ph") == "X" and e.get("pid") in device:
      total[e["name"]] += float(e.get("dur", 0))
      count[e["name"]] += 1
  return [(k, round(count[k] / reps), v / reps) for k, v in total.most_common()]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--frames", type=int, default=512, help="frames per call (head_chunk x B)")
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--top", type=int, default=30)
  p.add_argument("--part", choices=("head", "attention"), default="head")
  p.add_argument("--out", help="folder to keep the trace in")
  p.add_argument("overrides", nargs="*", help="ModelConfig / ExecConfig field=value")
  args = p.parse_args(argv)

  import jax
  import jax.numpy as jnp

  from rcfam_jax import frame_head
  from rcfam_jax.research.bench import common

  cfg, ex = common.configs(*common.parse_overrides(args.overrides))
  params = frame_head.init(jax.random.PRNGKey(0), cfg)
  frames = jax.random.randint(jax.random.PRNGKey(1), (args.frames,) + cfg.frame_shape, 0, 256)
  frames = frames.astype(jnp.uint8)
  if args.part == "head":
    fn, xs = (lambda p, f: frame_head.apply(p, f, cfg, ex)), (params, frames)
  else:
    x = frame_head.embed_cells(params, frames, cfg)
    for d in params["down"]:
      x = frame_head.downsample(d, x, cfg, frame_head.resolved_conv_impl(ex, cfg))
    x = x.reshape(args.frames, -1, cfg.d_model).astype(jnp.float32)
    fn = lambda b, x: frame_head.attention_stack(b, x, cfg, ex)
    xs = (params["blocks"], x)

  @jax.jit
  def fwd_bwd(*a):
    y, pull = jax.vjp(fn, *a)
    return y, pull(jnp.ones_like(y))

  jax.block_until_ready(fwd_bwd(*xs))
  trace = pathlib.Path(args.out or tempfile.mkdtemp(prefix="rcfam_head_profile_"))
  with jax.profiler.trace(str(trace), create_perfetto_trace=True):
    for _ in range(args.reps):
      jax.block_until_ready(fwd_bwd(*xs))
  found = sorted(trace.rglob("perfetto_trace.json.gz"))
  if not found:
    raise SystemExit(f"the profiler wrote no perfetto_trace.json.gz under {trace}")
  rows = kernel_table(found[-1], args.reps)
  device_us = sum(us for _, _, us in rows)
  print(
    f"{args.part} fwd+bwd, {args.frames} frames, {' '.join(args.overrides)}: "
    f"{device_us / 1e3:.2f} ms of device time per rep, {len(rows)} kernels"
  )
  for name, n, us in rows[: args.top]:
    print(f"{us / 1e3:8.3f} ms {100 * us / device_us:5.1f}% x{n:<4d} {name[:110]}")
  if not args.out:
    shutil.rmtree(trace, ignore_errors=True)


if __name__ == "__main__":
  main()
