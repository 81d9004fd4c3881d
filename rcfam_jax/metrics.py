"""Training logs: JSONL + TensorBoard scalars, a tqdm progress bar, and loss-curve plots.

Call from process 0 only. Every file goes through `etils.epath`, so the workdir may be local or
any URI epath opens (`gs://bucket/run`, `s3://...`). `metrics.jsonl` is append-only: a resumed
run continues it, and `plot_curves` keeps, for each step, the record of the run that wrote it
last.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

import numpy as np
import tqdm
from etils import epath
from tensorboardX import event_file_writer, record_writer
from tensorboardX.proto import event_pb2, summary_pb2

# Object stores take about one write per second per object: a remote log is re-uploaded by a
# write at least this long after its previous upload, and on close. A killed run loses the
# records written since its last upload.
REMOTE_FLUSH_SECS = 10.0


def _is_local(path) -> bool:
  return "://" not in os.fspath(path)


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


class _ObjectFile:
  """A binary file written to an object store, which cannot append in place.

  The content is kept in memory and the whole object rewritten (one atomic upload) by `flush`,
  at most every `REMOTE_FLUSH_SECS`, and by `close`. Logs are small (kilobytes to megabytes).
  """

  def __init__(self, path, initial: bytes = b""):
    self.path, self._buf = epath.Path(path), bytearray(initial)
    self._dirty, self._last = True, -float("inf")

  def write(self, data: bytes) -> None:
    self._buf += data
    self._dirty = True

  def flush(self, force: bool = False) -> None:
    if self._dirty and (force or time.monotonic() - self._last >= REMOTE_FLUSH_SECS):
      self.path.write_bytes(bytes(self._buf))
      self._dirty, self._last = False, time.monotonic()

  def close(self) -> None:
    self.flush(force=True)


class _EpathRecordFiles:
  """tensorboardX writer factory: event files under a URI scheme are written through epath.

  Registered (`record_writer.register_writer_factory`) for the scheme of each non-local
  `MetricWriter` workdir, replacing tensorboardX's own gs:// and s3:// writers, which need
  google-cloud-storage or boto3. Chosen over writing to a local temporary directory and copying:
  events go straight to their destination, with no local state to lose or clean up.
  """

  def open(self, path):
    return _ObjectFile(path)

  def directory_check(self, path):
    epath.Path(path).mkdir(parents=True, exist_ok=True)


def _open_log(path):
  """`path` opened for appending bytes; a torn last line (killed writer) is dropped first."""
  p = epath.Path(path)
  old = p.read_bytes() if p.exists() else b""
  kept = old[: old.rfind(b"\n") + 1]
  if not _is_local(p):
    return _ObjectFile(p, kept)
  if kept != old:
    _write_atomic(p, kept)
  return p.open("ab")


class _EventFile:
  """One new TensorBoard event file in `logdir`, written synchronously by tensorboardX.

  tensorboardX's `SummaryWriter` queues events for a background thread and its `flush` does
  not drain that queue; its `EventsWriter` writes and flushes in the caller, so every scalar
  logged before a flush is in the file. Local files are opened by tensorboardX itself; others
  through epath (`_EpathRecordFiles`).
  """

  def __init__(self, logdir):
    logdir = epath.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    if not _is_local(logdir):
      record_writer.register_writer_factory(os.fspath(logdir).split("://")[0], _EpathRecordFiles())
    # The name holds the time in seconds; the suffix (ns) keeps two writers started in the same
    # second apart and in creation order, the order TensorBoard reads a run's files in.
    self._w = event_file_writer.EventsWriter(
      os.path.join(os.fspath(logdir), "events"), f".{time.time_ns()}"
    )
    self.flush()

  def scalars(self, values: dict, step: int) -> None:
    """Several tags at one step in one event."""
    summary = summary_pb2.Summary(
      value=[summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]
    )
    self._w.write_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

  def flush(self) -> None:
    self._w.flush()

  def close(self) -> None:
    self._w.close()


class MetricWriter:
  """Writes `workdir/metrics.jsonl` (one {"step", "wall_time", **metrics} per line) and
  `workdir/tb/`."""

  def __init__(self, workdir, *, tensorboard: bool = True):
    workdir = epath.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    self.path = workdir / "metrics.jsonl"
    self._f = _open_log(self.path)
    self._tb = _EventFile(workdir / "tb") if tensorboard else None

  def write(self, step: int, metrics: dict) -> None:
    """Scalars: python numbers, numpy/jax 0-d arrays (strings go to the JSONL only)."""
    values = {k: _to_python(k, v) for k, v in metrics.items()}
    record = {"step": int(step), "wall_time": time.time(), **values}
    self._f.write((json.dumps(record) + "\n").encode())
    self._f.flush()  # a killed run keeps every line written so far (remote: see _ObjectFile)
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
  lines = epath.Path(path).read_text(encoding="utf-8").splitlines()
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


class _Lines:
  """Stream adapter for non-terminals: each tqdm redraw ('\\r' + text) becomes one plain line."""

  def __init__(self, stream):
    self.stream = stream

  def write(self, s: str) -> None:
    text = s.replace("\r", "").rstrip()
    if text:
      self.stream.write(text + "\n")

  def flush(self) -> None:
    self.stream.flush()


_PLAIN_FORMAT = (
  "step {n_fmt}/{total_fmt} ({percentage:.1f}%) | {rate_fmt} | "
  "elapsed {elapsed}, ETA {remaining}{postfix}"
)


class Progress:
  """tqdm bar of training steps with rate, ETA and the latest scalars (`update(step, loss=...)`).

  On a terminal it redraws in place at most every `mininterval` s (default 0.1). Elsewhere (CI
  logs, files) each redraw is one plain line, at most every `mininterval` s (default 30) and
  every `miniters` steps, so long runs do not flood the log.
  """

  def __init__(
    self,
    total_steps: int,
    *,
    start_step: int = 0,
    stream=None,
    mininterval: float | None = None,
    miniters: int = 1,
    disable: bool = False,
  ):
    stream = sys.stderr if stream is None else stream
    self.tty = bool(getattr(stream, "isatty", lambda: False)())
    if mininterval is None:
      mininterval = 0.1 if self.tty else 30.0
    self._scalars = {}
    self._bar = tqdm.tqdm(
      total=int(total_steps),
      initial=int(start_step),
      unit="step",
      file=stream if self.tty else _Lines(stream),
      dynamic_ncols=self.tty,
      bar_format=None if self.tty else _PLAIN_FORMAT,
      mininterval=mininterval,
      miniters=max(1, int(miniters)),
      leave=True,
      disable=disable,
    )

  def update(self, step: int, **scalars) -> None:
    if scalars:
      self._scalars.update({k: f"{float(np.asarray(v)):.4g}" for k, v in scalars.items()})
      self._bar.set_postfix(self._scalars, refresh=False)
    self._bar.update(int(step) - self._bar.n)

  def close(self) -> None:
    if not self.tty and getattr(self._bar, "last_print_n", None) == self._bar.n:
      self._bar.leave = False  # this step's line is already in the log
    self._bar.close()


def last_run(records: list[dict]) -> list[dict]:
  """Drops records a resumed run superseded: when the step goes back to s, earlier ones >= s."""
  out = []
  for r in records:
    if out and r["step"] < out[-1]["step"]:
      while out and out[-1]["step"] >= r["step"]:
        out.pop()
    out.append(r)
  return out


def _run_name(path: epath.Path) -> str:
  parent = path.parent if not _is_local(path) else epath.Path(os.path.abspath(path)).parent
  return parent.name


def plot_curves(jsonl_path, png_path, keys=("train_loss", "val_loss")) -> None:
  """PNG of `keys` against step (left) and wall-clock hours (right); written atomically."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  jsonl_path = epath.Path(jsonl_path)
  records = last_run(read_jsonl(jsonl_path))
  fig = Figure(figsize=(11, 4), dpi=100)
  FigureCanvasAgg(fig)
  ax_step, ax_time = fig.subplots(1, 2)
  t0 = records[0]["wall_time"] if records else 0.0
  plotted = False
  for key in keys:
    rows = [
      (r["step"], (r["wall_time"] - t0) / 3600, r[key])
      for r in records
      if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
    ]
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
      ax.text(
        0.5,
        0.5,
        f"no {', '.join(keys)} in {jsonl_path.name}",
        ha="center",
        va="center",
        transform=ax.transAxes,
      )
  fig.suptitle(_run_name(jsonl_path))
  save_png(fig, png_path)


def _write_atomic(path, data: bytes) -> None:
  """Writes `data` to a temporary file beside `path` (any epath filesystem), renamed when
  complete."""
  path = epath.Path(path)
  tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
  try:
    tmp.write_bytes(data)
    tmp.replace(path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise


def write_text(path, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically: readers see the old file or the new one."""
  _write_atomic(path, text.encode("utf-8"))


def save_png(fig, path) -> None:
  """Lays out `fig` and writes it as PNG to `path` atomically."""
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  _write_atomic(path, buf.getvalue())
