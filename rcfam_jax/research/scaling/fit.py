"""Reads runs back and fits them: power law over T per step, wall-time crossovers, positions.

Pure functions over plain lists and dicts; `load_run` is the only one that touches files.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
from etils import epath
from scipy import stats

from rcfam_jax import metrics


def elapsed(rows: list[dict], *, max_gap_s: float = 600.0) -> np.ndarray:
  """Seconds of logged time per row, from the first row: sums the intervals between rows.

  An interval over `max_gap_s` (a restart: downtime, reload, recompilation) adds nothing; an
  interval that ends in an evaluation row logged at the same step as the row before it (the
  evaluation itself) adds nothing either, so the time is training time.
  """
  out, total = [0.0], 0.0
  for prev, row in zip(rows, rows[1:]):
    dt = row["wall_time"] - prev["wall_time"]
    is_eval = "val_loss" in row and "train_loss" not in row and row["step"] == prev["step"]
    if 0 < dt <= max_gap_s and not is_eval:
      total += dt
    out.append(total)
  return np.asarray(out)


def _seconds_per_step(rows: list[dict], tc: dict) -> float:
  """Median training seconds per step, from the logged frames/s (evaluation excluded)."""
  rates = [r["frames_per_s"] for r in rows if r.get("frames_per_s", 0) > 0]
  return float(tc["batch_size"] * tc["seq_len"] / np.median(rates)) if rates else 0.0


def load_run(workdir: str, *, max_gap_s: float = 600.0) -> dict:
  """{name, workdir, seq_len, batch_size, eval_seq_len, train, evals} from one run directory.

  evals: rows with val_loss, each with `time_s` (training seconds, see `elapsed`) added; the
  steps before the first logged row count at the run's median logged rate, so a run whose first
  row is an early evaluation does not start the clock late.
  """
  cfg_path, log_path = epath.Path(workdir) / "config.json", epath.Path(workdir) / "metrics.jsonl"
  for p in (cfg_path, log_path):
    if not p.exists():
      raise FileNotFoundError(f"{p} missing: is {workdir} a run directory of `scaling run`?")
  tc = json.loads(cfg_path.read_text())["train"]
  rows = metrics.last_run(metrics.read_jsonl(str(log_path)))  # drops rows a resume superseded
  times = elapsed(rows, max_gap_s=max_gap_s)
  if rows:  # the steps before the first row trained too: add their time at the logged rate
    times = times + rows[0]["step"] * _seconds_per_step(rows, tc)
  for r, t in zip(rows, times):
    r["time_s"] = float(t)
  evals = [r for r in rows if isinstance(r.get("val_loss"), (int, float))]
  if not evals:
    raise ValueError(
      f"{log_path} has no val_loss rows yet (first eval at step {tc.get('eval_every')})"
    )
  return {
    "name": os.path.basename(os.path.normpath(workdir)),
    "workdir": workdir,
    "seq_len": int(tc["seq_len"]),
    "batch_size": int(tc["batch_size"]),
    "eval_seq_len": int(tc["eval_seq_len"]),
    "train": [r for r in rows if "train_loss" in r],
    "evals": evals,
  }


def power_law(seq_lens, losses, *, level: float = 0.95) -> dict:
  """Least squares log L = log A - alpha log T. CI for alpha from the t-distribution (n >= 3)."""
  x, y = np.log(np.asarray(seq_lens, float)), np.log(np.asarray(losses, float))
  n = len(x)
  if n < 2 or np.ptp(x) == 0:
    raise ValueError(f"need >= 2 distinct sequence lengths, got {list(seq_lens)}")
  if not np.all(np.isfinite(y)):
    raise ValueError(f"losses must be positive and finite, got {list(losses)}")
  xm, ym = x.mean(), y.mean()
  sxx = float(((x - xm) ** 2).sum())
  slope = float(((x - xm) * (y - ym)).sum() / sxx)
  intercept = ym - slope * xm
  resid = y - (intercept + slope * x)
  sst = float(((y - ym) ** 2).sum())
  out = {
    "n": n,
    "alpha": -slope,
    "A": float(math.exp(intercept)),
    "r2": 1.0 - float((resid**2).sum()) / sst if sst > 0 else 1.0,
    "alpha_se": None,
    "alpha_ci": None,
    "ci_note": "",
  }
  if n == 2:
    out["ci_note"] = "2 points: exact line, no CI"
  else:
    se = math.sqrt(float((resid**2).sum()) / (n - 2) / sxx)
    half = float(stats.t.ppf(0.5 + level / 2, n - 2)) * se
    out.update(alpha_se=se, alpha_ci=[out["alpha"] - half, out["alpha"] + half])
  return out


def _nearest(evals: list[dict], step: int, tol: int) -> dict | None:
  best = min(evals, key=lambda r: abs(r["step"] - step))
  return best if abs(best["step"] - step) <= tol else None


def common_steps(runs: list[dict], *, tol: int = 0, min_runs: int = 2) -> list[tuple[int, list]]:
  """[(step, [(run, eval row) ...])] for every eval step of any run matched in >= min_runs runs."""
  out = []
  for s in sorted({r["step"] for run in runs for r in run["evals"]}):
    hits = [(run, e) for run in runs if (e := _nearest(run["evals"], s, tol)) is not None]
    if len(hits) >= min_runs and not (
      out and [e["step"] for _, e in out[-1][1]] == [e["step"] for _, e in hits]
    ):
      out.append((s, hits))
  return out


def alpha_by_step(runs: list[dict], *, tol: int = 0, key: str = "val_loss") -> list[dict]:
  """The power-law fit at each evaluation step present in >= 2 runs."""
  rows = []
  for step, hits in common_steps(runs, tol=tol):
    hits = [(run, e) for run, e in hits if isinstance(e.get(key), (int, float))]
    if len(hits) >= 2:
      fit = power_law([run["seq_len"] for run, _ in hits], [e[key] for _, e in hits])
      rows.append(
        {
          "step": step,
          "seq_lens": [run["seq_len"] for run, _ in hits],
          "losses": [e[key] for _, e in hits],
          **fit,
        }
      )
  return rows


def crossover(short: tuple, long: tuple) -> dict:
  """First time the longer run's loss is below the shorter's at equal time (piecewise linear).

  short, long: (times, losses), increasing times. Compared on the overlap of the two time ranges.
  status: 'crossed' at time_s, 'below from start' (at the overlap's start), or 'not yet'.
  """
  ts, ls = (np.asarray(a, float) for a in short)
  tl, ll = (np.asarray(a, float) for a in long)
  lo, hi = max(ts[0], tl[0]), min(ts[-1], tl[-1])
  res = {
    "status": "not yet",
    "time_s": None,
    "overlap_s": [float(lo), float(hi)],
    "below_at_end": None,
  }
  if hi < lo:
    res["status"] = "no overlap"
    return res
  grid = np.unique(
    np.concatenate([[lo, hi], ts[(ts >= lo) & (ts <= hi)], tl[(tl >= lo) & (tl <= hi)]])
  )
  d = np.interp(grid, tl, ll) - np.interp(grid, ts, ls)  # < 0: the longer run is ahead
  res["below_at_end"] = bool(d[-1] < 0)
  if d[0] < 0:
    res.update(status="below from start", time_s=float(grid[0]))
    return res
  for i in range(1, len(grid)):
    if d[i] < 0:  # d is linear between grid points: its root lies in (grid[i-1], grid[i]]
      t = grid[i - 1] + (grid[i] - grid[i - 1]) * d[i - 1] / (d[i - 1] - d[i])
      res.update(status="crossed", time_s=float(t))
      break
  return res


def crossovers(runs: list[dict]) -> list[dict]:
  """`crossover` of validation loss against training time for every pair (shorter T, longer T)."""
  out = []
  by_t = sorted(runs, key=lambda r: r["seq_len"])
  for i, a in enumerate(by_t):
    for b in by_t[i + 1 :]:
      curve = lambda r: ([e["time_s"] for e in r["evals"]], [e["val_loss"] for e in r["evals"]])
      out.append({"short": a["seq_len"], "long": b["seq_len"], **crossover(curve(a), curve(b))})
  return out


def position_losses(runs: list[dict], *, tol: int = 0) -> dict:
  """val_loss_pos* per run at the last step common to all runs (pos0 = earliest positions)."""
  steps = common_steps(runs, tol=tol, min_runs=len(runs))
  if not steps:
    return {"step": None, "runs": [], "note": "no evaluation step common to all runs"}
  step, hits = steps[-1]
  rows = []
  for run, e in sorted(hits, key=lambda h: h[0]["seq_len"]):
    keys = sorted((k for k in e if k.startswith("val_loss_pos")), key=lambda k: int(k[12:]))
    pos = [e[k] for k in keys]
    rows.append(
      {
        "seq_len": run["seq_len"],
        "step": e["step"],
        "positions": pos,
        "early": pos[0] if pos else None,
        "late": pos[-1] if pos else None,
      }
    )
  fits = {}
  for name in ("early", "late"):
    pts = [(r["seq_len"], r[name]) for r in rows if r[name] is not None]
    if len(pts) >= 2:
      fits[name] = power_law(*zip(*pts))
  return {"step": step, "runs": rows, "fits": fits}


def fit_runs(runs: list[dict], *, tol: int = 0) -> dict:
  """Everything `report` writes, as plain JSON-able data."""
  ts = [r["seq_len"] for r in runs]
  if len(set(ts)) != len(ts):
    raise ValueError(f"two runs share a sequence length: {sorted(ts)}; fit one sweep at a time")
  if len(runs) < 2:
    raise ValueError("fit needs >= 2 runs of different sequence lengths")
  notes = []
  if len({r["eval_seq_len"] for r in runs}) > 1:
    notes.append("runs were validated at different eval_seq_len: losses are not comparable")
  return {
    "runs": [
      {k: r[k] for k in ("name", "workdir", "seq_len", "batch_size", "eval_seq_len")}
      | {
        "tokens_per_step": r["seq_len"] * r["batch_size"],
        "last_step": r["evals"][-1]["step"],
        "last_val_loss": r["evals"][-1]["val_loss"],
        "train_time_s": r["evals"][-1]["time_s"],
      }
      for r in sorted(runs, key=lambda r: r["seq_len"])
    ],
    "alpha_by_step": alpha_by_step(runs, tol=tol),
    "crossovers": crossovers(runs),
    "positions": position_losses(runs, tol=tol),
    "notes": notes,
  }
