"""The driver's derived figures (torch ratio, memory ratio, longest T) and the closing table."""

from __future__ import annotations

import json

GIB = 2**30


def emit(rec: dict, records: list):
  print(json.dumps(rec), flush=True)
  records.append(rec)


def _find(records, kind, **match):
  return [
    r
    for r in records
    if r.get("kind") == kind
    and all(r.get(k) == v for k, v in match.items())
    and "skipped" not in r
    and "error" not in r
  ]


def emit_torch_ratio(records: list, t: int):
  """Our throughput and peak against each torch_ref mode (compiled, eager) at the same T.

  Our peak is the step's: from the memory run at T when there is one (a process whose compile
  loaded the autotuning results, so the allocator peak is the step's alone); else the
  throughput process's, which includes what XLA's autotuner allocated while compiling unless
  its cache was warm (jax_peak_from says which)."""
  runs = _find(records, "train", T=t)
  mem_rec = next((r for r in runs if r.get("part") == "memory"), None)
  jax_rec = next((r for r in runs if r.get("part") != "memory"), mem_rec)
  peak_rec = mem_rec or jax_rec
  refs = _find(records, "torch_ref", T=t)
  if jax_rec is None and refs:
    emit({"kind": "torch_compare", "T": t, "skipped": "missing a throughput line"}, records)
    return
  for ref in refs:
    emit(
      {
        "kind": "torch_compare",
        "mode": ref["mode"],
        "T": t,
        "jax_frames_per_s": jax_rec["frames_per_s"],
        "jax_blocked_frames_per_s": jax_rec.get("blocked_frames_per_s"),
        "torch_frames_per_s": ref["frames_per_s"],
        "torch_pipelined_frames_per_s": ref.get("pipelined_frames_per_s"),
        "ratio": round(jax_rec["frames_per_s"] / ref["frames_per_s"], 4),
        "jax_peak_gib": round(peak_rec["peak_bytes"] / GIB, 3)
        if peak_rec.get("peak_bytes")
        else None,
        "jax_peak_from": "memory run" if mem_rec else "throughput process",
        "jax_process_peak_gib": round(jax_rec["peak_bytes"] / GIB, 3)
        if jax_rec.get("peak_bytes")
        else None,
        "torch_peak_gib": ref.get("peak_gib"),
        "target": 1.3,
      },
      records,
    )


def _host_mem_bytes() -> int | None:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return None


def _memory_run(records, t):
  """The memory part's step at T, else any step at T (None if neither ran)."""
  runs = _find(records, "train", T=t)
  return next((r for r in runs if r.get("part") == "memory"), next(iter(runs), None))


def emit_derived(records: list, args):
  """Memory ratio between the memory runs, and the longest-T estimate from compiled sizes."""
  mem_ts = [int(x) for x in args.mem_seq_lens.split(",") if x]
  runs = {t: _memory_run(records, t) for t in mem_ts}
  runs = {t: r for t, r in runs.items() if r is not None}
  if len(runs) >= 2:
    lo, hi = runs[min(runs)], runs[max(runs)]
    rec = {
      "kind": "memory",
      "T_small": lo["T"],
      "T_large": hi["T"],
      "batch": lo["batch"],
      "peak_small_bytes": lo.get("peak_bytes"),
      "peak_large_bytes": hi.get("peak_bytes"),
      "compiled_small_bytes": lo.get("compiled_total_bytes"),
      "compiled_large_bytes": hi.get("compiled_total_bytes"),
      "target": 1.1,
      "frames_growth_bytes": hi["frames_bytes"] - lo["frames_bytes"],
    }
    if lo.get("peak_bytes") and hi.get("peak_bytes"):
      rec["ratio"] = round(hi["peak_bytes"] / lo["peak_bytes"], 4)
    elif lo.get("compiled_total_bytes"):  # no allocator stats (CPU): XLA's figure instead
      rec["ratio_compiled"] = round(hi["compiled_total_bytes"] / lo["compiled_total_bytes"], 4)
    emit(rec, records)
  long = next(iter(_find(records, "compile_memory")), None)
  small = runs.get(min(runs)) if runs else None
  if long is None or small is None or not small.get("compiled_total_bytes"):
    return
  t0, t1 = small["T"], long["T"]
  per_step = (long["compiled_total_bytes"] - small["compiled_total_bytes"]) / max(t1 - t0, 1)
  b = long["batch"]
  cfg = small.get("config", {})
  frame = cfg.get("rows", 24) * cfg.get("cols", 80)
  feed = next(iter(_find(records, "feed")), None)
  host_step = (
    feed["host_batch_bytes"] / (feed["batch"] * feed["T"]) * b if feed else b * (frame * 7 + 10)
  ) + b * frame * 2  # + the reader's uint16 cells
  host = _host_mem_bytes()
  limit = long.get("bytes_limit") or small.get("bytes_limit")
  rec = {
    "kind": "longest_T",
    "batch": b,
    "T_long": t1,
    "compiled_long_bytes": long["compiled_total_bytes"],
    "device_bytes_per_step": round(per_step),
    "frames_bytes_per_step": round(long["frames_bytes"] / t1),
    "host_bytes_per_step": round(host_step),
    "device_bytes_limit": limit,
    "host_mem_bytes": host,
    "target": 65536,
  }
  if limit and per_step > 0:
    rec["device_bound_T"] = int(t0 + (limit - small["compiled_total_bytes"]) / per_step)
  if host:
    rec["host_bound_T"] = int(host / 2 / host_step)  # the batch plus one being read
  bounds = {k: v for k, v in rec.items() if k.endswith("_bound_T")}
  if bounds:
    which = min(bounds, key=bounds.get)
    rec["longest_T"] = bounds[which]
    rec["bound"] = (
      "device memory: XLA's compiled live bytes grow by device_bytes_per_step "
      "(frames, d-vectors, LSTM residuals) up to bytes_limit"
      if which == "device_bound_T"
      else "host memory: the reader builds the whole (B, T) batch on the host"
    )
  rec["fits"] = long["compiled_total_bytes"] <= (limit or float("inf"))
  emit(rec, records)


def _gib(x):
  return f"{x / GIB:.2f}" if isinstance(x, (int, float)) else "-"


def _rows(records, args):
  out = []
  tr = next(iter(_find(records, "train", T=args.seq_len)), None)
  if tr:
    val = f"{tr['frames_per_s']:,.0f} (each step waited for: {tr['blocked_frames_per_s']:,.0f})"
    mem = f", process peak {_gib(tr.get('peak_bytes'))} GiB, compile {tr['compile_s']:.0f} s"
    out.append((f"train frames/s, T={tr['T']} B={tr['batch']}", val + mem, ""))
  for r in _find(records, "torch_compare"):
    mem = f", peak {r['torch_peak_gib']} GiB" if r.get("torch_peak_gib") else ""
    out.append((f"torch {r['mode']} frames/s", f"{r['torch_frames_per_s']:,.0f}{mem}", ""))
    out.append((f"speed-up over torch {r['mode']}", f"{r['ratio']:.2f}x", ">= 1.3x"))
    if r.get("jax_peak_gib") and r.get("torch_peak_gib"):
      val = f"{r['jax_peak_gib']:.2f} / {r['torch_peak_gib']:.2f} GiB ({r['jax_peak_from']})"
      out.append((f"step peak, ours / torch {r['mode']}", val, "<= 1x"))
  for r in _find(records, "matmul_peak"):
    out.append((f"bf16 matmul peak (n={r['n']})", f"{r['tflops']:.0f} TFLOP/s", ""))
  for r in _find(records, "mfu"):
    out.append(("MFU (3x fwd FLOPs / matmul peak)", f"{100 * r['mfu']:.1f}%", ""))
  for r in _find(records, "memory"):
    val = (
      f"{_gib(r['peak_small_bytes'])} / {_gib(r['peak_large_bytes'])} GiB, {r['ratio']:.3f}x"
      if "ratio" in r
      else f"compiled {_gib(r['compiled_small_bytes'])} / {_gib(r['compiled_large_bytes'])} GiB, "
      f"{r.get('ratio_compiled', 0):.3f}x"
    )
    out.append((f"peak T={r['T_small']} / T={r['T_large']}", val, "<= 1.1x"))
  for r in _find(records, "compile_memory"):
    out.append((f"compiled live bytes T={r['T']}", f"{_gib(r['compiled_total_bytes'])} GiB", ""))
  for r in _find(records, "longest_T"):
    val = f"~{r['longest_T']:,} ({r['bound'].split(':')[0]})" if "longest_T" in r else "-"
    out.append((f"longest T at B={r['batch']} (estimate)", val, ">= 65,536"))
  for r in _find(records, "train"):
    if r["T"] == args.long_seq_len:
      out.append(
        (f"ran T={r['T']}", f"peak {_gib(r.get('peak_bytes'))} GiB, {r['step_s']:.0f} s/step", "")
      )
  lstm = [
    r for r in _find(records, "lstm") if "fwd_bwd_us_per_step" in r and "ablate" not in r["label"]
  ]
  if lstm:
    best = min(lstm, key=lambda r: r["fwd_bwd_us_per_step"])
    out.append(
      (
        f"LSTM fwd+bwd us/step, best of {len(lstm)}",
        f"{best['fwd_bwd_us_per_step']:.1f} ({best['label']})",
        "<= 12",
      )
    )
    scans = [r for r in lstm if r.get("impl", "scan") == "scan"]
    if scans and best not in scans:
      s = min(scans, key=lambda r: r["fwd_bwd_us_per_step"])
      out.append(
        (
          "LSTM fwd+bwd us/step, best scan",
          f"{s['fwd_bwd_us_per_step']:.1f} ({s['label']})",
          "portable path",
        )
      )
  for r in _find(records, "lstm"):
    if "ablate" in r.get("label", "") and "fwd_us_per_step" in r:
      out.append(
        (
          f"LSTM {r['label']}",
          f"fwd {r['fwd_us_per_step']:.1f} / fwd+bwd {r['fwd_bwd_us_per_step']:.1f} us/step",
          "profiling",
        )
      )
  for r in _find(records, "breakdown"):
    rate = f", {r['fwd_bwd_tflops']:.1f} TFLOP/s" if "fwd_bwd_tflops" in r else ""
    bound = (
      f"; head alone: {r['head_bound_frames_per_s']:,.0f} frames/s"
      if "head_bound_frames_per_s" in r
      else ""
    )
    out.append(
      (
        f"head part: {r['label']}",
        f"fwd {r['fwd_ms']:.1f} / fwd+bwd {r['fwd_bwd_ms']:.1f} ms{rate}{bound}",
        f"{r['frames']} frames",
      )
    )
  for r in _find(records, "feed"):
    out.append(("feed: reader inline / resident", f"{r['inline_ratio']:.3f}", ">= 0.95"))
    out.append(
      ("feed: grain pipeline (as loop.py) / resident", f"{r['pipeline_ratio']:.3f}", ">= 0.95")
    )
  for r in _find(records, "sweep"):
    if "frames_per_s" in r:
      torch = f", {r['vs_torch']:.2f}x torch compiled" if "vs_torch" in r else ""
      out.append(
        (
          f"sweep {r['label']}",
          f"{r['frames_per_s']:,.0f} ({r['vs_base']:.3f}x{torch})",
          ">= 1.6x" if torch else "",
        )
      )
  for r in records:
    if "error" in r or "skipped" in r:
      out.append(
        (
          f"{r.get('part') or r.get('label') or r.get('kind')}",
          (r.get("error") or r.get("skipped"))[:60],
          "not measured",
        )
      )
  return out


def print_table(records: list, args, wall_s: float):
  rows = _rows(records, args)
  w = max([len(r[0]) for r in rows] + [10])
  v = max([len(r[1]) for r in rows] + [5])
  print(f"\n{'measurement':<{w}}  {'value':<{v}}  target")
  for name, val, target in rows:
    print(f"{name:<{w}}  {val:<{v}}  {target}")
  print(f"(wall {wall_s:.0f} s)", flush=True)
