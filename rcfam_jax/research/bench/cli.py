"""GPU performance benchmark: one command, one JSON line per measurement, a table.

  python -m rcfam_jax.research.bench [--data data/self_24x80]
      [--compare-torch] [--run-long] [field=value ...]

Measurements, each in a fresh process (so peak memory is that measurement's own):
  1. throughput: the training step (fwd, bwd, AdamW) at B=16, T=512 on device-resident random
     frames (packed uint16 cells, as loop.py feeds them; --frames contract for (..., 7) uint8),
     each window from the learned (h0, c0) as training's default (--carry-state: from the last
     window's state), timed as loop.py runs it; MFU = 3 x forward FLOPs/frame x frames/s over
     the bf16 matmul peak measured in the same process; then, with --data, the same compiled
     step fed by the real reader (inline, and through the grain pipeline loop.py uses);
  2. torch: with --compare-torch, the PyTorch FBAM (research/torch_fbam.py) at the same B, T and
     fields, compiled then eager, and our ratio to each;
  3. lstm: one LSTM layer B=16 H=1024 T=2048 bf16, fwd and fwd+bwd us/step per variant;
  4. memory: allocator peak of real steps at T=128 and T=8192 (one process each), and XLA's
     compiled memory analysis at T=65536 (compile only; --run-long also runs one step), from
     which the longest trainable T is estimated;
  5. breakdown: the frame head's parts (embedding, each downsample block and its convolution,
     the attention stack, the whole head), fwd and fwd+bwd ms and TFLOP/s on one head chunk;
  6. sweep: the fastest measured settings (--sweep-set combinations), then head remat
     policies, conv implementations, chunk sizes and attention implementations, one process
     each while --budget-s allows; each against the throughput line and torch-ref.
Fields are ModelConfig / ExecConfig overrides (e.g. d_model=256 head_chunk=32).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rcfam_jax.config import ExecConfig, from_dict
from rcfam_jax.research.bench import report
from rcfam_jax.research.bench.common import parse_overrides
from rcfam_jax.research.bench.runner import AUTOTUNE_FLAG, Runner, child_env

# The fastest measured settings on an H200 (docs/BENCHMARKS.md §4): the sweep's first points.
SWEEP_SETS = ("head_remat=convs",)
PARTS = ("throughput", "torch", "lstm", "breakdown", "memory", "long", "sweep")


def worker(kind: str, job: dict):
  if kind == "lstm":
    from rcfam_jax.research.bench import lstm_micro

    return lstm_micro.lstm_job(job)
  if kind == "breakdown":
    from rcfam_jax.research.bench import breakdown

    return breakdown.breakdown_job(job)
  from rcfam_jax.research.bench import step

  {"train": step.train_job, "compile": step.compile_job, "sweep": step.sweep}[kind](job)


def sweep_points(args, m_over, b_over) -> list[dict]:
  base_chunk = from_dict(ExecConfig, b_over).head_chunk
  base_attn = b_over.get("attention_impl", "auto")
  pts = []
  for combo in args.sweep_set:  # first: several fields at once (the fastest measured settings)
    m, b = parse_overrides(filter(None, combo.split(",")))
    pts.append({"label": combo, "m": m, "b": b})
  # Keeping the convolution outputs (the head's largest FLOPs) instead of recomputing them.
  pts += [
    {"label": f"head_remat {r}", "b": {"head_remat": r}}
    for r in filter(None, args.sweep_head_remat.split(","))
    if r != b_over.get("head_remat")
  ]
  pts += [
    {"label": f"conv {c}", "b": {"conv_impl": c}}
    for c in filter(None, args.sweep_conv.split(","))
    if c != b_over.get("conv_impl")
  ]
  pts += [
    {"label": f"head_chunk {c}", "b": {"head_chunk": c}}
    for c in _ints(args.sweep_chunks)
    if c != base_chunk
  ]
  pts += [
    {"label": f"attention {a}", "b": {"attention_impl": None if a == "none" else a}}
    for a in filter(None, args.sweep_attention.split(","))
    if a != base_attn
  ]
  return pts


def lstm_variants(args) -> list[dict]:
  out = [{"unroll": u, "remat": "none"} for u in _ints(args.lstm_unrolls)]
  out += [
    {"unroll": 8, "remat": r, "interval": 64} for r in filter(None, args.lstm_remats.split(","))
  ]
  return out + ([{"impl": "fused", "unroll": 1, "remat": "none"}] if args.lstm_fused else [])


def _ints(s: str) -> list[int]:
  return [int(x) for x in s.split(",") if x]


def torch_cmd(args, mode: str) -> list[str]:
  """The PyTorch FBAM (rcfam_jax.research.torch_fbam) at this run's B, T and fields."""
  return [
    args.torch_python or sys.executable,
    "-m",
    "rcfam_jax.research.torch_fbam",
    f"--mode={mode}",
    f"--batch={args.batch}",
    f"--seq-len={args.seq_len}",
    f"--steps={args.torch_steps}",
    f"--frames={args.frames}",
    *args.overrides,
  ]


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument(
    "--worker", choices=("train", "compile", "lstm", "breakdown", "sweep"), help=argparse.SUPPRESS
  )
  p.add_argument("--job", help=argparse.SUPPRESS)
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--seq-len", type=int, default=512, help="T of throughput, feed, torch, sweep")
  p.add_argument("--steps", type=int, default=4, help="timed steps per throughput/feed mode")
  p.add_argument("--matmul-n", type=int, default=8192, help="n of the n^3 bf16 peak matmul")
  p.add_argument("--mem-seq-lens", default="128,8192", help="real steps; peak memory per T")
  p.add_argument("--long-seq-len", type=int, default=65536, help="compile-only memory analysis")
  p.add_argument(
    "--run-long",
    action="store_true",
    help="also run one step at --long-seq-len (~3.5 min at 65,536 on an H200)",
  )
  p.add_argument(
    "--frames",
    choices=("packed", "contract"),
    default="packed",
    help="the step's input, both sides: packed uint16 cells (2 bytes a cell, what loop.py "
    "feeds) or contract frames (..., 7) uint8",
  )
  p.add_argument(
    "--carry-state",
    action="store_true",
    help="time the carried-state step (each window from the last one's LSTM state); default: "
    "fresh windows from the learned (h0, c0), the training default and the PyTorch model's",
  )
  p.add_argument("--data", default="data/self_24x80", help="dataset dir for the feed benchmark")
  p.add_argument("--data-tokenizer", type=int, default=0, help="tokenizer_size of that dataset")
  p.add_argument(
    "--compare-torch",
    action="store_true",
    help="also run the PyTorch FBAM (rcfam_jax/research/torch_fbam.py), compiled and eager",
  )
  p.add_argument("--torch-python", help="interpreter with torch for it (default: this one)")
  p.add_argument("--torch-steps", type=int, default=3)
  p.add_argument("--lstm-batch", type=int, default=16)
  p.add_argument("--lstm-hidden", type=int, default=1024)
  p.add_argument("--lstm-seq-len", type=int, default=2048)
  p.add_argument("--lstm-reps", type=int, default=10)
  p.add_argument("--lstm-dtype", default="bfloat16")
  p.add_argument("--lstm-unrolls", default="1,4,8,16", help="unroll values (no remat)")
  p.add_argument("--lstm-remats", default="step,nested", help="remat options, at unroll 8")
  p.add_argument(
    "--no-lstm-fused",
    dest="lstm_fused",
    action="store_false",
    help="skip the fused persistent kernel (lstm_fused.py; NVIDIA GPUs only)",
  )
  p.add_argument(
    "--lstm-ablate",
    default="",
    help="also time the fused kernel with parts left "
    "out (RCFAM_ABLATE bits: 1 barrier, 2 staging, 4 products; e.g. 1,2,4,7): "
    "profiling by subtraction, wrong results",
  )
  p.add_argument("--sweep-chunks", default="16,64", help="head_chunk values to try")
  p.add_argument("--sweep-head-remat", default="matmuls", help="head_remat values to try")
  p.add_argument(
    "--sweep-conv",
    default="",
    help="conv_impl values to try at the run's head_chunk (default on a GPU: parity; on an "
    "H200 im2col and matmul were 0.68x / 0.65x of cuDNN's dilated conv, xla)",
  )
  p.add_argument(
    "--sweep-attention", default="xla", help="attention_impl values to try (cudnn, xla, none)"
  )
  p.add_argument(
    "--sweep-set",
    action="append",
    metavar="F=V,F=V",
    help="a sweep point setting several fields at once (repeatable; given, it "
    f"replaces the default points {', '.join(SWEEP_SETS)}; '' for none)",
  )
  p.add_argument("--skip", default="", help=f"comma list of parts to skip: {','.join(PARTS)}")
  p.add_argument(
    "--budget-s",
    type=float,
    default=600,
    help="sweep points start only while the whole command is within this many seconds",
  )
  p.add_argument("--job-timeout", type=float, default=480, help="seconds per child process")
  p.add_argument("--xla-flags", default="", help="appended to XLA_FLAGS of every child")
  p.add_argument(
    "--no-autotune-cache",
    action="store_true",
    help=f"do not share XLA autotuning results between children ({AUTOTUNE_FLAG})",
  )
  p.add_argument("overrides", nargs="*", help="ModelConfig/ExecConfig field=value")
  args = p.parse_args(argv)
  args.sweep_set = [c for c in (SWEEP_SETS if args.sweep_set is None else args.sweep_set) if c]
  return args


def main(argv=None):
  args = parse_args(argv)
  if args.worker:
    return worker(args.worker, json.loads(args.job))
  m_over, b_over = parse_overrides(args.overrides)
  skip = set(filter(None, args.skip.split(",")))
  if skip - set(PARTS):
    raise SystemExit(f"--skip {sorted(skip - set(PARTS))}: parts are {PARTS}")
  start = time.time()
  runner = Runner(child_env(args), args.job_timeout)
  base = {"batch": args.batch, "m": m_over, "b": b_over, "packed": args.frames == "packed"}
  base["carry_state"] = args.carry_state
  if "throughput" not in skip:
    data_dir = args.data if args.data and args.data != "none" else None
    runner.job(
      "train",
      {
        **base,
        "T": args.seq_len,
        "steps": args.steps,
        "matmul_n": args.matmul_n,
        "data": data_dir,
        "data_tokenizer": args.data_tokenizer,
      },
      label=f"throughput T={args.seq_len}",
    )
  if args.compare_torch and "torch" not in skip:
    for mode in ("compiled", "eager"):
      runner.run(torch_cmd(args, mode), label=f"torch {mode}", tag={"kind": "torch_ref"})
  if "lstm" not in skip:
    lstm_job = {
      "batch": args.lstm_batch,
      "hidden": args.lstm_hidden,
      "T": args.lstm_seq_len,
      "reps": args.lstm_reps,
      "dtype": args.lstm_dtype,
    }
    runner.job("lstm", {**lstm_job, "variants": lstm_variants(args)}, label="lstm")
    for a in _ints(args.lstm_ablate):  # one process each: the variant is fixed at first use
      fused = {"impl": "fused", "unroll": 1, "remat": "none", "ablate": a}
      runner.job("lstm", {**lstm_job, "variants": [fused]}, label=f"lstm ablate {a}")
  if "breakdown" not in skip:
    runner.job(
      "breakdown",
      {
        "batch": args.batch,
        "m": m_over,
        "b": b_over,
        "reps": args.lstm_reps,
        "chunk": from_dict(ExecConfig, b_over).head_chunk,
      },
      label="breakdown",
    )
  if "memory" not in skip:  # the run's own T too: the step's peak beside torch's
    for t in sorted(set(_ints(args.mem_seq_lens)) | {args.seq_len}):
      job = {**base, "T": t, "steps": 1 if t <= 1024 else 0, "part": "memory"}
      runner.job("train", job, label=f"memory T={t}")
  if args.compare_torch and "torch" not in skip:
    report.emit_torch_ratio(runner.records, args.seq_len)
  if "long" not in skip:
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.95"}
    runner.job(
      "compile", {**base, "T": args.long_seq_len}, label=f"compile T={args.long_seq_len}", env=env
    )
    if args.run_long:
      runner.job(
        "train",
        {**base, "T": args.long_seq_len, "steps": 0},
        label=f"run T={args.long_seq_len}",
        env=env,
        timeout=max(args.job_timeout, 600),
      )
  report.emit_derived(runner.records, args)
  pts = sweep_points(args, m_over, b_over)
  if pts and "sweep" not in skip:
    main_rec = next(
      (r for r in runner.records if r.get("kind") == "train" and r.get("T") == args.seq_len), None
    )
    torch_fps = next(
      (
        r["torch_frames_per_s"]
        for r in runner.records
        if r.get("kind") == "torch_compare" and r.get("mode") == "compiled"
      ),
      None,
    )
    if main_rec is None:
      report.emit({"kind": "sweep", "skipped": "no baseline throughput line"}, runner.records)
    else:  # one process per point: a point that hangs or runs out of memory is its own error
      est = main_rec["compile_s"] + 3 * main_rec["step_s"] + 10  # then the last point's wall
      for pt in pts:
        if time.time() + est > start + args.budget_s:
          report.emit(
            {
              "kind": "sweep",
              "label": pt["label"],
              "skipped": f"time budget --budget-s {args.budget_s:g}",
            },
            runner.records,
          )
          continue
        t_pt = time.time()
        runner.job(
          "sweep",
          {
            **base,
            "T": args.seq_len,
            "steps": min(args.steps, 2),
            "sweep": [pt],
            "base_fps": main_rec["frames_per_s"],
            "torch_fps": torch_fps,
          },
          label=f"sweep {pt['label']}",
        )
        est = time.time() - t_pt
  report.print_table(runner.records, args, time.time() - start)


if __name__ == "__main__":
  main()
