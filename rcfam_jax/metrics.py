"""Training logs: JSONL + TensorBoard scalars, a terminal progress line, and loss-curve plots.

Call from process 0 only. `metrics.jsonl` is append-only: a resumed run continues it, and
`plot_curves` keeps, for each step, the record of the run that wrote it last.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from rcfam_jax import tensorboard as tb_lib


def _to_python(key, value):
  if isinstance(value, str):
    return value
  a = np.asarray(value)
  if a.ndim != 0:
    raise ValueError(f"Metric {key!r} has shape {a.shape}; log scalars only (reduce it first).")
  if a.dtype == bool:
    return bool(a)
  if np.issubdtype(a.dtype, np.integer):
    return int(a)
  return float(a)


class MetricWriter:
  """Writes `workdir/metrics.jsonl` (one {"step", "wall_time", **metrics} per line) and `workdir/tb/`."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._f = open(self.path, "a", encoding="utf-8")
    self._tb = tb_lib.EventWriter(os.path.join(workdir, "tb")) if tensorboard else None

  def write(self, step: int, metrics: dict) -> None:
    """Scalars: python numbers, numpy/jax 0-d arrays (strings go to the JSONL only)."""
    values = {k: _to_python(k, v) for k, v in metrics.items()}
    record = {"step": int(step), "wall_time": time.time(), **values}
    self._f.write(json.dumps(record) + "\n")
    self._f.flush()  # a killed run keeps every line written so far
    if self._tb is not None:
      numeric = {k: v for k, v in values.items() if not isinstance(v, str)}
      if numeric:
        self._tb.scalars(numeric, int(step))
        self._tb.flush()

  def close(self) -> None:
    self._f.close()
    if self._tb is not None:
      self._tb.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def read_jsonl(path) -> list[dict]:
  """All records of a JSONL log; a torn last line (killed writer) is dropped."""
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  out = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError:
      if i != len(lines) - 1:
        raise ValueError(f"{path}:{i + 1} is not valid JSON: {line[:80]!r}") from None
  return out


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  s = int(seconds)
  h, m = divmod(s, 3600)
  m, s = divmod(m, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _fmt_value(v) -> str:
  v = float(v)
  return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


class Progress:
  """Progress bar with rate, ETA and the latest scalars; plain lines every `every` steps if no tty.

  The rate is measured from the first `update` (which usually includes compilation) on.
  """

  def __init__(self, total_steps: int, *, start_step: int = 0, stream=sys.stderr, every: int = 50):
    self.total, self.stream, self.every = int(total_steps), stream, max(1, int(every))
    self.tty = bool(getattr(stream, "isatty", lambda: False)())
    self._t0 = self._s0 = None
    self._step, self._scalars = int(start_step), {}
    self._last_draw = 0.0
    self._last_line_step = None

  def _line(self) -> str:
    step, total = self._step, self.total
    now = time.time()
    rate = (step - self._s0) / (now - self._t0) if self._t0 is not None and now > self._t0 else 0.0
    eta = (total - step) / rate if rate > 0 else float("inf")
    frac = step / total if total else 1.0
    parts = [f"step {step}/{total} ({100 * frac:.1f}%)", f"{rate:.2f} it/s",
             f"ETA {_fmt_time(eta)}"]
    parts += [f"{k} {_fmt_value(v)}" for k, v in self._scalars.items()]
    text = " | ".join(parts)
    if self.tty:
      width = 24
      filled = min(width, int(width * frac))
      text = f"[{'#' * filled}{'.' * (width - filled)}] " + text
    return text

  def update(self, step: int, **scalars) -> None:
    now = time.time()
    if self._t0 is None:
      self._t0, self._s0 = now, int(step)
    self._step = int(step)
    self._scalars.update({k: float(np.asarray(v)) for k, v in scalars.items()})
    if self.tty:
      if now - self._last_draw >= 0.1 or step >= self.total:
        self.stream.write("\r\033[K" + self._line())
        self.stream.flush()
        self._last_draw = now
    elif step % self.every == 0 or step >= self.total:
      self._emit()

  def _emit(self):
    if self._last_line_step != self._step:
      self.stream.write(self._line() + "\n")
      self.stream.flush()
      self._last_line_step = self._step

  def close(self) -> None:
    if self.tty:
      self.stream.write("\r\033[K" + self._line() + "\n")
      self.stream.flush()
    elif self._t0 is not None:
      self._emit()


def last_run(records: list[dict]) -> list[dict]:
  """Drops records a resumed run superseded: when the step goes back to s, earlier ones >= s."""
  out = []
  for r in records:
    if out and r["step"] < out[-1]["step"]:
      while out and out[-1]["step"] >= r["step"]:
        out.pop()
    out.append(r)
  return out


def plot_curves(jsonl_path: str, png_path: str, keys=("train_loss", "val_loss")) -> None:
  """PNG of `keys` against step (left) and wall-clock hours (right); written atomically."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  records = last_run(read_jsonl(jsonl_path))
  fig = Figure(figsize=(11, 4), dpi=100)
  FigureCanvasAgg(fig)
  ax_step, ax_time = fig.subplots(1, 2)
  t0 = records[0]["wall_time"] if records else 0.0
  plotted = False
  for key in keys:
    rows = [(r["step"], (r["wall_time"] - t0) / 3600, r[key]) for r in records
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    if not rows:
      continue
    steps, hours, values = zip(*rows)
    style = dict(marker="o", ms=3) if len(rows) < 30 else {}
    ax_step.plot(steps, values, label=key, **style)
    ax_time.plot(hours, values, label=key, **style)
    plotted = True
  ax_step.set_xlabel("step")
  ax_time.set_xlabel("wall time (h, gaps = restarts)")
  for ax in (ax_step, ax_time):
    ax.grid(alpha=0.3)
    if plotted:
      ax.legend()
    else:
      ax.text(0.5, 0.5, f"no {', '.join(keys)} in {os.path.basename(jsonl_path)}",
              ha="center", va="center", transform=ax.transAxes)
  fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(jsonl_path))))
  save_png(fig, png_path)


def write_text(path: str, text: str) -> None:
  """Writes `text` to a temporary file beside `path`, renamed when complete."""
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def save_png(fig, path: str) -> None:
  """Lays out `fig` and writes it as PNG to a temporary file, renamed when complete."""
  fig.tight_layout()
  tmp = f"{path}.tmp.{os.getpid()}"
  try:
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
