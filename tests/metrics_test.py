"""MetricWriter (JSONL + TensorBoard), the TFRecord/Event encoder, Progress and plot_curves."""
import io
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import metrics, tensorboard


def test_crc32c_known_vectors():
  assert tensorboard.crc32c(b"") == 0
  assert tensorboard.crc32c(b"123456789") == 0xE3069283
  assert tensorboard.crc32c(b"\x00" * 32) == 0x8A9136AA  # RFC 3720 B.4
  assert tensorboard.crc32c(b"\xff" * 32) == 0x62A8AB43
  assert tensorboard.crc32c(bytes(range(32))) == 0x46DD794E


def test_event_file_round_trip(tmp_path):
  w = tensorboard.EventWriter(str(tmp_path))
  w.scalar("loss", 2.5, 0)
  w.scalar("loss", np.float32(1.25), 10)
  w.scalar("neg/step", -3.0, -1)
  w.scalars({"a": 1, "b": jnp.float32(0.5)}, 2**40)
  w.close()
  assert os.path.basename(w.path).startswith("events.out.tfevents.")
  assert tensorboard.read_scalars(w.path) == [
      (0, "loss", 2.5), (10, "loss", 1.25), (-1, "neg/step", -3.0),
      (2**40, "a", 1.0), (2**40, "b", 0.5)]
  events = [tensorboard.decode_event(r) for r in tensorboard.read_records(w.path)]
  assert events[0]["file_version"] == "brain.Event:2" and not events[0]["scalars"]
  assert all(abs(e["wall_time"] - events[0]["wall_time"]) < 60 for e in events)
  path = tmp_path / os.path.basename(w.path)  # a flipped payload byte fails the CRC
  data = bytearray(path.read_bytes())
  data[-6] ^= 1
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match="CRC"):
    tensorboard.read_scalars(w.path)


def _protobuf_event_class():
  """Event/Summary/Value built from a descriptor: an independent protobuf parser of our bytes."""
  pytest.importorskip("google.protobuf")
  from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
  F = descriptor_pb2.FieldDescriptorProto
  fdp = descriptor_pb2.FileDescriptorProto(name="rcfam_event_test.proto", package="rcfamtest")

  def msg(name, fields):
    m = fdp.message_type.add(name=name)
    for fname, num, ftype, label, tname in fields:
      f = m.field.add(name=fname, number=num, type=ftype, label=label)
      if tname:
        f.type_name = tname

  opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
  msg("Value", [("tag", 1, F.TYPE_STRING, opt, ""), ("simple_value", 2, F.TYPE_FLOAT, opt, "")])
  msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".rcfamtest.Value")])
  msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, ""), ("step", 2, F.TYPE_INT64, opt, ""),
                ("file_version", 3, F.TYPE_STRING, opt, ""),
                ("summary", 5, F.TYPE_MESSAGE, opt, ".rcfamtest.Summary")])
  pool = descriptor_pool.DescriptorPool()
  pool.Add(fdp)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName("rcfamtest.Event"))


def test_events_parse_with_protobuf(tmp_path):
  Event = _protobuf_event_class()
  w = tensorboard.EventWriter(str(tmp_path))
  w.scalar("val_loss", 0.75, 123)
  w.scalar("x", 1.0, -5)
  w.close()
  events = [Event.FromString(r) for r in tensorboard.read_records(w.path)]
  assert events[0].file_version == "brain.Event:2"
  assert (events[1].step, events[1].summary.value[0].tag) == (123, "val_loss")
  assert events[1].summary.value[0].simple_value == 0.75
  assert events[2].step == -5


def test_tensorboard_package_reads_our_file(tmp_path):
  loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
  w = tensorboard.EventWriter(str(tmp_path))
  w.scalar("loss", 1.5, 7)
  w.close()
  events = list(loader.LegacyEventFileLoader(w.path).Load())
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
  assert recs[0]["train_loss"] == 2.0 and recs[0]["n_valid"] == 5 and isinstance(recs[0]["n_valid"], int)
  assert recs[1]["note"] == "warmup" and recs[2]["val_loss"] == 1.2
  assert all(isinstance(r["wall_time"], float) for r in recs)
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "train_lo')  # torn last line of a killed run
  assert len(metrics.read_jsonl(tmp_path / "metrics.jsonl")) == 3
  tb = sorted(tensorboard.read_scalars(str(tmp_path / "tb")))
  assert (1, "train_loss", 2.0) in tb and (3, "val_loss", pytest.approx(1.2)) in tb
  assert len(os.listdir(tmp_path / "tb")) == 2  # one event file per run, none overwritten


class _Tty(io.StringIO):
  def isatty(self):
    return True


def test_progress_plain_lines():
  out = io.StringIO()
  p = metrics.Progress(200, start_step=100, stream=out, every=50)
  for step in range(101, 201):
    p.update(step, loss=3.0 - step / 100)
  p.close()
  lines = out.getvalue().splitlines()
  assert len(lines) == 2 and "\r" not in out.getvalue()
  assert "step 150/200" in lines[0] and "ETA" in lines[0] and "loss 1.5" in lines[0]
  assert "step 200/200 (100.0%)" in lines[1] and "loss 1" in lines[1]


def test_progress_tty_bar():
  out = _Tty()
  p = metrics.Progress(10, stream=out)
  p.update(1, loss=2.0)
  p.update(10, loss=0.5)
  p.close()
  text = out.getvalue()
  assert "\r" in text and "[" in text and "step 10/10" in text and "loss 0.5" in text
  assert "ETA" in text and text.endswith("\n")


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
