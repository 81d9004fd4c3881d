"""The cliff against layers: where last-step accuracy crosses the threshold, and its fit.

The sweep's cliff (fit.py) is a grid value, the first evaluated depth below the threshold, so
it cannot tell 4.1 from 7.9 on a grid of 4, 8, 12. `crossing` interpolates: between the last
evaluated depth at or above the threshold and the first below it, linearly in log2(depth).
`layer_fits` fits log2(crossing) = log2(A) + b log2(layers) by least squares over the RoPE
runs of one task and model kind (rcfam_jax.research.scaling.fit.power_law: the slope's 95%
interval from the t-distribution, for three or more points).
"""

from __future__ import annotations

import math

from rcfam_jax.research.scaling.fit import power_law

KINDS = ("transformer", "mamba")


def threshold(results) -> float:
  """The sweep's cliff threshold (fit.RunConfig.cliff_threshold, recorded with every run)."""
  return next(iter(results["runs"].values()))["run"].get("cliff_threshold", 0.9)


def crossing(eval_: dict, threshold: float = 0.9) -> tuple[float | None, str]:
  """(depth where last-step accuracy first falls below `threshold`, or None; its text). The
  text is '<d' if the first evaluated depth d is already below, '>d' if no depth up to d is."""
  pts = sorted((int(d), m["final_acc"]) for d, m in eval_.items())
  for k, (d, acc) in enumerate(pts):
    if acc >= threshold:
      continue
    if k == 0:
      return None, f"<{d}"
    d0, a0 = pts[k - 1]
    x = math.log2(d0) + (a0 - threshold) / (a0 - acc) * (math.log2(d) - math.log2(d0))
    return 2.0**x, f"{2.0**x:.1f}"
  return None, f">{pts[-1][0]}"


def _groups(results) -> dict:
  """(task label, kind) -> [(layers, run)] of the RoPE runs, by layers, where >= 2 layer counts."""
  out = {}
  for r in results["runs"].values():
    m = r["model"]
    if m["kind"] in KINDS and m.get("pos_encoding", "rope") == "rope":
      out.setdefault((r.get("label", r["task"]["name"]), m["kind"]), []).append((m["layers"], r))
  return {k: sorted(v, key=lambda x: x[0]) for k, v in out.items() if len({n for n, _ in v}) > 1}


def layer_fits(results) -> list[dict]:
  """Per (task, kind) with runs at >= 2 layer counts: the runs' crossings and the power law
  crossing = A x layers^b over those with a crossing (None where fewer than 2 have one)."""
  thr = threshold(results)
  fits = []
  for (task, kind), runs in _groups(results).items():
    rows = [(n, r, *crossing(r["eval"], thr)) for n, r in runs]
    pts = [(n, x) for n, _, x, _ in rows if x is not None]
    fit = None
    if len({n for n, _ in pts}) > 1:
      p = power_law([n for n, _ in pts], [x for _, x in pts])
      ci = p["alpha_ci"] and [-p["alpha_ci"][1], -p["alpha_ci"][0]]
      fit = {"n": p["n"], "b": -p["alpha"], "A": p["A"], "b_ci": ci, "r2": p["r2"]}
    fits.append({"task": task, "kind": kind, "threshold": thr, "rows": rows, "fit": fit})
  return fits


def table(results) -> str:
  """Markdown: per task and kind, layers, last-step accuracy at 16, grid cliff, interpolated
  crossing; then the fitted law of each."""
  fits = layer_fits(results)
  if not fits:
    return ""
  thr = 100 * fits[0]["threshold"]
  lines = [
    f"| task | model | layers | params | last-step at 16 | cliff (grid) | {thr:.0f}% crossing |",
    "|---|---|---|---|---|---|---|",
  ]
  for f in fits:
    for n, r, _, text in f["rows"]:
      acc16 = r["eval"].get("16", {}).get("final_acc")
      acc16 = f"{100 * acc16:.1f}%" if acc16 is not None else "n/a"
      cliff = r["cliff_depth"] if r["cliff_depth"] is not None else "none"
      lines.append(
        f"| {f['task']} | {f['kind']} | {n} | {r['params']:,} | {acc16} | {cliff} | {text} |"
      )
  lines.append("")
  for f in fits:
    fit, head = f["fit"], f"- {f['task']}, {f['kind']}: "
    if fit is None:
      lines.append(head + "fewer than two layer counts with a crossing; no fit.")
      continue
    ci = fit["b_ci"]
    ci = f"95% interval {ci[0]:.3g} to {ci[1]:.3g}" if ci else "two points, no interval"
    lines.append(
      head + f"crossing = {fit['A']:.2f} x layers^{fit['b']:.2f} ({ci}; R^2 {fit['r2']:.2f}; "
      f"{fit['n']} layer counts)."
    )
  return "\n".join(lines) + "\n"
