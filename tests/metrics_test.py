"""MetricWriter (JSONL + TensorBoard via tensorboardX) on local and remote epath workdirs,
Progress (tqdm) and plot_curves."""

import io
import math
import os
import struct

import jax.numpy as jnp
import numpy as np
import pytest
from etils import epath
from tensorboardX import crc32c as tbx_crc
from tensorboardX.proto import event_pb2

from rcfam_jax import metrics


def _masked_crc(data: bytes) -> int:
  crc = tbx_crc.crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(path) -> list:
  """The Event protos of a TFRecord event file read through epath; both CRCs are checked."""
  buf, i, out = epath.Path(path).read_bytes(), 0, []
  while i < len(buf):
    header = buf[i : i + 8]
    (n,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", buf[i + 8 : i + 12])[0] == _masked_crc(header), "length CRC"
    data = buf[i + 12 : i + 12 + n]
    assert struct.unpack("<I", buf[i + 12 + n : i + 16 + n])[0] == _masked_crc(data), "data CRC"
    out.append(event_pb2.Event.FromString(data))
    i += 16 + n
  return out


def read_scalars(logdir) -> list[tuple[int, str, float]]:
  """(step, tag, value) of all event files of `logdir`, in file-name order."""
  files = sorted(f for f in epath.Path(logdir).iterdir() if "tfevents" in f.name)
  return [
    (e.step, v.tag, v.simple_value) for f in files for e in read_events(f) for v in e.summary.value
  ]


def test_crc32c_is_castagnoli():
  assert tbx_crc.crc32c(b"123456789") == 0xE3069283  # what TensorBoard's reader checks
  assert tbx_crc.crc32c(b"\x00" * 32) == 0x8A9136AA  # RFC 3720 B.4


def test_event_file_round_trip(tmp_path):
  w = metrics.MetricWriter(tmp_path)
  w.write(0, {"loss": 2.5})
  w.write(10, {"loss": np.float32(1.25), "note": "text stays in the jsonl"})
  w.write(-1, {"neg/step": -3.0})
  w.write(2**40, {"a": 1, "b": jnp.float32(0.5)})
  assert (10, "loss", 1.25) in read_scalars(tmp_path / "tb")  # flushed before close
  w.close()
  (path,) = (tmp_path / "tb").iterdir()
  assert path.name.startswith("events.out.tfevents.")
  assert read_scalars(tmp_path / "tb") == [
    (0, "loss", 2.5),
    (10, "loss", 1.25),
    (-1, "neg/step", -3.0),
    (2**40, "a", 1.0),
    (2**40, "b", 0.5),
  ]
  events = read_events(path)
  assert events[0].file_version == "brain.Event:2" and not events[0].summary.value
  assert all(abs(e.wall_time - events[0].wall_time) < 60 for e in events)


def test_tensorboard_package_reads_our_file(tmp_path):
  loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
  with metrics.MetricWriter(tmp_path) as w:
    w.write(7, {"loss": 1.5})
  (path,) = (tmp_path / "tb").iterdir()
  events = list(loader.LegacyEventFileLoader(str(path)).Load())
  assert events[0].file_version == "brain.Event:2"
  assert events[1].step == 7 and events[1].summary.value[0].simple_value == 1.5


def test_metric_writer_jsonl_and_resume(tmp_path):
  w = metrics.MetricWriter(str(tmp_path))
  w.write(1, {"train_loss": jnp.float32(2.0), "n_valid": np.int32(5), "lr": 1e-3})
  w.write(2, {"train_loss": 1.5, "note": "warmup"})
  w.close()
  w = metrics.MetricWriter(str(tmp_path))  # resumed run appends
  w.write(3, {"train_loss": 1.0, "val_loss": 1.2})
  with pytest.raises(ValueError, match="shape"):
    w.write(4, {"bad": np.ones(3)})
  w.close()
  recs = metrics.read_jsonl(tmp_path / "metrics.jsonl")
  assert [r["step"] for r in recs] == [1, 2, 3]
  assert (
    recs[0]["train_loss"] == 2.0 and recs[0]["n_valid"] == 5 and isinstance(recs[0]["n_valid"], int)
  )
  assert recs[1]["note"] == "warmup" and recs[2]["val_loss"] == 1.2
  assert all(isinstance(r["wall_time"], float) for r in recs)
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "train_lo')  # torn last line of a killed run
  assert len(metrics.read_jsonl(tmp_path / "metrics.jsonl")) == 3
  tb = read_scalars(tmp_path / "tb")  # files in name order are in run order
  assert [s for s, _, _ in tb] == [1, 1, 1, 2, 3, 3]
  assert (1, "train_loss", 2.0) in tb and (3, "val_loss", pytest.approx(1.2)) in tb
  assert len(os.listdir(tmp_path / "tb")) == 2  # one event file per run, none overwritten
  with metrics.MetricWriter(tmp_path, tensorboard=False) as w:  # resuming drops the torn line
    w.write(4, {"train_loss": 0.9})
  assert [r["step"] for r in metrics.read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]


@pytest.fixture
def gs_memory(monkeypatch, tmp_path):
  """epath's `gs://` served by an in-memory fsspec filesystem; the cwd is an empty directory."""
  from etils.epath import backend
  from fsspec.implementations.memory import MemoryFileSystem

  class MemoryGcs(MemoryFileSystem):
    store, pseudo_dirs = {}, [""]  # this test's own, not fsspec's global memory store

    @classmethod
    def _strip_protocol(cls, path):
      return MemoryFileSystem._strip_protocol(os.fspath(path).removeprefix("gs://"))

  fs = MemoryGcs(skip_instance_cache=True)
  monkeypatch.setenv("EPATH_USE_TF", "0")  # epath's fsspec backend even where TF is installed
  monkeypatch.setattr(backend.fsspec_backend, "fs", lambda path: fs)
  monkeypatch.chdir(tmp_path)
  return fs


def test_metric_writer_on_remote_workdir(gs_memory, tmp_path):
  root = epath.Path("gs://bucket/run")
  w = metrics.MetricWriter("gs://bucket/run")
  w.write(1, {"train_loss": 2.0})
  w.write(2, {"train_loss": 1.5, "val_loss": 1.75, "note": "warmup"})
  # Objects are re-uploaded at most every REMOTE_FLUSH_SECS: step 1 is there, step 2 not yet.
  assert [r["step"] for r in metrics.read_jsonl(root / "metrics.jsonl")] == [1]
  w.close()
  with metrics.MetricWriter(root) as w:  # a resumed run appends to the remote log
    w.write(3, {"train_loss": 1.0})
  recs = metrics.read_jsonl("gs://bucket/run/metrics.jsonl")
  assert [r["step"] for r in recs] == [1, 2, 3] and recs[1]["note"] == "warmup"
  assert len(list((root / "tb").iterdir())) == 2
  assert read_scalars(root / "tb") == [
    (1, "train_loss", 2.0),
    (2, "train_loss", 1.5),
    (2, "val_loss", 1.75),
    (3, "train_loss", 1.0),
  ]
  metrics.plot_curves("gs://bucket/run/metrics.jsonl", "gs://bucket/run/loss.png")
  assert (root / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  metrics.write_text(root / "config.json", '{"seed": 1}\n')
  assert (root / "config.json").read_text() == '{"seed": 1}\n'
  assert sorted(p.name for p in root.iterdir()) == [
    "config.json",
    "loss.png",
    "metrics.jsonl",
    "tb",
  ]
  assert all(k.startswith("/bucket/run/") for k in gs_memory.store)
  assert os.listdir(tmp_path) == []  # nothing under a local "gs:" folder (or anywhere here)


class _Tty(io.StringIO):
  def isatty(self):
    return True


def test_progress_plain_lines():
  out = io.StringIO()
  p = metrics.Progress(200, start_step=100, stream=out, mininterval=0, miniters=50)
  for step in range(101, 201):
    p.update(step, loss=3.0 - step / 100)
  p.close()
  lines = out.getvalue().splitlines()
  assert "\r" not in out.getvalue() and len(lines) == 3  # start, 150, 200; close adds none
  assert lines[0].startswith("step 100/200 (50.0%)")
  assert "step 150/200" in lines[1] and "ETA" in lines[1] and "loss=1.5" in lines[1]
  assert "step 200/200 (100.0%)" in lines[2] and "loss=1" in lines[2]


def test_progress_plain_lines_are_throttled():
  out = io.StringIO()
  p = metrics.Progress(5000, stream=out)  # not a terminal: at most a line per 30 s
  for step in range(1, 5001):
    p.update(step, loss=1.0)
  p.close()
  lines = out.getvalue().splitlines()
  assert len(lines) == 2 and "step 0/5000" in lines[0] and "step 5000/5000" in lines[1]


def test_progress_tty_bar():
  out = _Tty()
  p = metrics.Progress(10, stream=out, mininterval=0)
  p.update(1, loss=2.0)
  p.update(10, loss=0.5)
  p.close()
  text = out.getvalue()
  assert "\r" in text and "|" in text and "10/10" in text and "loss=0.5" in text
  assert "step/s" in text and text.endswith("\n")


def test_plot_curves_png(tmp_path):
  w = metrics.MetricWriter(str(tmp_path), tensorboard=False)
  for step in range(0, 100, 10):
    w.write(step, {"train_loss": 3.0 * math.exp(-step / 50)})
    if step % 30 == 0:
      w.write(step, {"val_loss": 3.2 * math.exp(-step / 60)})
  w.write(40, {"train_loss": 1.0})  # a resumed run: steps >= 40 are superseded
  w.close()
  recs = metrics.last_run(metrics.read_jsonl(tmp_path / "metrics.jsonl"))
  assert [r["step"] for r in recs][-3:] == [30, 30, 40]
  png = tmp_path / "curves.png"
  metrics.plot_curves(str(tmp_path / "metrics.jsonl"), str(png))
  data = png.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
  assert [p.name for p in tmp_path.iterdir() if ".tmp." in p.name] == []
  metrics.plot_curves(str(tmp_path / "metrics.jsonl"), str(png), keys=("missing",))
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_text_is_atomic(tmp_path, monkeypatch):
  path = tmp_path / "config.json"
  metrics.write_text(path, "old")

  def fail(self, target):
    raise OSError("disk full")

  monkeypatch.setattr(type(epath.Path(path)), "replace", fail)
  with pytest.raises(OSError, match="disk full"):
    metrics.write_text(path, "new")
  assert path.read_text() == "old" and os.listdir(tmp_path) == ["config.json"]


def test_disabled_progress_prints_nothing():
  """Processes other than 0 of a multi-process job keep their bar disabled."""
  out = io.StringIO()
  bar = metrics.Progress(10, stream=out, disable=True)
  bar.update(3, loss=1.0)
  bar.close()
  assert out.getvalue() == ""
