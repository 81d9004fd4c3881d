"""Plots (PNG), report.md and fit.json from `fit.fit_runs` output and the loaded runs."""

from __future__ import annotations

import datetime
import json

import numpy as np
from etils import epath

from rcfam_jax import metrics


def _figure(ncols=1, width=6.5):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(width * ncols, 4.2), dpi=100)
  FigureCanvasAgg(fig)
  return fig, fig.subplots(1, ncols)


def _plain_log_ticks(ax, xticks=None):
  """Log axes labelled 4.5, 128 rather than 4.5x10^0; x ticks at the given values."""
  from matplotlib.ticker import FormatStrFormatter, NullFormatter

  for axis in (ax.xaxis, ax.yaxis):
    if axis.get_scale() == "log":
      axis.set_major_formatter(FormatStrFormatter("%.3g"))
      axis.set_minor_formatter(FormatStrFormatter("%.3g") if axis is ax.yaxis else NullFormatter())
  if xticks is not None:
    ax.set_xticks(list(xticks))


def _time_unit(seconds: float) -> tuple[float, str]:
  return (3600.0, "h") if seconds > 7200 else (60.0, "min") if seconds > 300 else (1.0, "s")


def _by_t(runs):
  return sorted(runs, key=lambda r: r["seq_len"])


def plot_loss_vs_step(runs, path):
  fig, ax = _figure()
  for i, r in enumerate(_by_t(runs)):
    color = f"C{i}"
    if r["train"]:
      ax.plot(
        [x["step"] for x in r["train"]],
        [x["train_loss"] for x in r["train"]],
        color=color,
        alpha=0.25,
        lw=0.8,
      )
    ax.plot(
      [e["step"] for e in r["evals"]],
      [e["val_loss"] for e in r["evals"]],
      "o-",
      ms=3,
      color=color,
      label=f"T={r['seq_len']} (val)",
    )
  ax.set(xlabel="step", ylabel="loss (faint: train)", yscale="log", title="loss vs step")
  _plain_log_ticks(ax)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  metrics.save_png(fig, path)


def plot_loss_vs_time(runs, path):
  scale, unit = _time_unit(max(r["evals"][-1]["time_s"] for r in runs))
  fig, ax = _figure()
  for r in _by_t(runs):
    ax.plot(
      [e["time_s"] / scale for e in r["evals"]],
      [e["val_loss"] for e in r["evals"]],
      "o-",
      ms=3,
      label=f"T={r['seq_len']}",
    )
  ax.set(
    xlabel=f"training wall time ({unit}; restarts and evals excluded)",
    ylabel="validation loss",
    yscale="log",
    title="validation loss vs wall time",
  )
  _plain_log_ticks(ax)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  metrics.save_png(fig, path)


def _pick(rows, k=4):
  if len(rows) <= k:
    return rows
  return [rows[i] for i in np.unique(np.linspace(0, len(rows) - 1, k).round().astype(int))]


def plot_loss_vs_seq_len(alpha_rows, path):
  fig, ax = _figure()
  for i, row in enumerate(_pick(alpha_rows)):
    t = np.asarray(row["seq_lens"], float)
    ax.loglog(t, row["losses"], "o", color=f"C{i}")
    grid = np.geomspace(t.min(), t.max(), 50)
    ax.loglog(
      grid,
      row["A"] * grid ** -row["alpha"],
      "-",
      color=f"C{i}",
      label=f"step {row['step']}: α={row['alpha']:.3f}",
    )
  ax.set(
    xlabel="trained sequence length T",
    ylabel="validation loss",
    title="L = A·T^(−α) at selected steps",
  )
  _plain_log_ticks(ax, sorted({t for r in alpha_rows for t in r["seq_lens"]}))
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  metrics.save_png(fig, path)


def plot_alpha(alpha_rows, path):
  fig, ax = _figure()
  steps = [r["step"] for r in alpha_rows]
  ax.plot(steps, [r["alpha"] for r in alpha_rows], "o-", ms=3, label="α")
  ci = [(s, r["alpha_ci"]) for s, r in zip(steps, alpha_rows) if r["alpha_ci"]]
  if ci:
    ax.fill_between(
      [s for s, _ in ci],
      [c[0] for _, c in ci],
      [c[1] for _, c in ci],
      alpha=0.25,
      label="95% CI (t)",
    )
  ax.axhline(0, color="k", lw=0.6)
  ax.set(xlabel="step", ylabel="α", title="power-law exponent vs step")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  metrics.save_png(fig, path)


def plot_positions(positions, path):
  fig, ax = _figure()
  rows = positions["runs"]
  if rows and rows[0]["positions"]:
    t = [r["seq_len"] for r in rows]
    for b in range(len(rows[0]["positions"])):
      ax.plot(t, [r["positions"][b] for r in rows], "o-", ms=3, label=f"pos bucket {b}")
    ax.set_xscale("log")
    _plain_log_ticks(ax, t)
  ax.set(
    xlabel="trained sequence length T",
    ylabel="validation loss",
    title=f"loss by position within the eval window (step {positions['step']})",
  )
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  metrics.save_png(fig, path)


PLOTS = {
  "loss_vs_step.png": "validation (and faint training) loss against step",
  "loss_vs_time.png": "validation loss against training wall time",
  "loss_vs_seq_len.png": "log-log loss against T with the fitted lines",
  "alpha_vs_step.png": "α against step with its 95% CI",
  "positions.png": "early- against late-position loss",
}


def _f(x, fmt=".4g"):
  return "–" if x is None else format(x, fmt)


def markdown(result: dict, *, command: str = "") -> str:
  """report.md text: runs, α per step, crossovers, positions, plots."""
  out = [
    "# Sequence-length scaling report",
    "",
    f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    + (f" by `{command}`" if command else "")
    + ".",
    "",
  ]
  out += [f"> {n}" for n in result["notes"]] + ([""] if result["notes"] else [])
  out += [
    "## Runs",
    "",
    "| run | T | batch | tokens/step | eval T | last step | last val loss | train time (s) |",
    "|---|---|---|---|---|---|---|---|",
  ]
  out += [
    f"| {r['name']} | {r['seq_len']} | {r['batch_size']} | {r['tokens_per_step']} | "
    f"{r['eval_seq_len']} | {r['last_step']} | {r['last_val_loss']:.4f} | "
    f"{r['train_time_s']:.1f} |"
    for r in result["runs"]
  ]
  out += [
    "",
    "## Power law log L = log A − α log T per step",
    "",
    "| step | n | α | 95% CI | A | R² |",
    "|---|---|---|---|---|---|",
  ]
  for r in result["alpha_by_step"]:
    ci = f"[{r['alpha_ci'][0]:.4f}, {r['alpha_ci'][1]:.4f}]" if r["alpha_ci"] else r["ci_note"]
    out.append(
      f"| {r['step']} | {r['n']} | {r['alpha']:.4f} | {ci} | {r['A']:.4g} | {r['r2']:.3f} |"
    )
  out += [
    "",
    "## Wall-time crossovers",
    "",
    "First training time at which the longer-T run's validation loss is below the "
    "shorter-T run's at equal time (linear interpolation over the overlap of both runs).",
    "",
    "| shorter T | longer T | status | at (s) | overlap (s) | longer below at end |",
    "|---|---|---|---|---|---|",
  ]
  for c in result["crossovers"]:
    lo, hi = c["overlap_s"]
    out.append(
      f"| {c['short']} | {c['long']} | {c['status']} | {_f(c['time_s'])} | "
      f"{lo:.4g}–{hi:.4g} | {c['below_at_end']} |"
    )
  pos = result["positions"]
  out += ["", f"## Early vs late positions (step {pos['step']})", ""]
  if pos["runs"]:
    nb = len(pos["runs"][0]["positions"])
    out += [
      "| T | " + " | ".join(f"pos{b}" for b in range(nb)) + " | late − early |",
      "|---|" + "---|" * (nb + 1),
    ]
    out += [
      f"| {r['seq_len']} | "
      + " | ".join(f"{v:.4f}" for v in r["positions"])
      + f" | {_f(r['late'] - r['early'] if r['positions'] else None, '+.4f')} |"
      for r in pos["runs"]
    ]
    for name, ft in pos.get("fits", {}).items():
      out.append(
        f"\nα over T for {name} positions: {ft['alpha']:.4f}"
        + (
          f" (95% CI [{ft['alpha_ci'][0]:.4f}, {ft['alpha_ci'][1]:.4f}])"
          if ft["alpha_ci"]
          else f" ({ft['ci_note']})"
        )
      )
  else:
    out.append(pos.get("note", ""))
  out += ["", "## Plots", ""] + [f"![{d}]({p})" for p, d in PLOTS.items()]
  return "\n".join(out) + "\n"


def write(result: dict, runs: list[dict], out_dir: str, *, command: str = "") -> list[str]:
  """Writes the PNGs, report.md and fit.json into out_dir (each atomically); returns the paths."""
  epath.Path(out_dir).mkdir(parents=True, exist_ok=True)
  p = lambda name: str(epath.Path(out_dir) / name)
  plot_loss_vs_step(runs, p("loss_vs_step.png"))
  plot_loss_vs_time(runs, p("loss_vs_time.png"))
  plot_loss_vs_seq_len(result["alpha_by_step"], p("loss_vs_seq_len.png"))
  plot_alpha(result["alpha_by_step"], p("alpha_vs_step.png"))
  plot_positions(result["positions"], p("positions.png"))
  metrics.write_text(p("report.md"), markdown(result, command=command))
  metrics.write_text(p("fit.json"), json.dumps(result, indent=1))
  return [p(n) for n in (*PLOTS, "report.md", "fit.json")]
