"""TensorBoard scalar event files without tensorflow or the tensorboard package.

A file is a TFRecord stream: per record, uint64 length, masked crc32c(length), data, masked
crc32c(data), all little-endian. Each record is an `Event` protobuf, encoded here by hand:
  Event:   wall_time=1 (double), step=2 (int64), file_version=3 (string), summary=5 (Summary)
  Summary: value=1 (repeated Value);  Value: tag=1 (string), simple_value=2 (float)
The first event carries file_version "brain.Event:2". Local paths only.
"""
from __future__ import annotations

import os
import socket
import struct
import time

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _make_table():
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ _POLY if c & 1 else c >> 1
    table.append(c)
  return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for b in data:
    crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format (only what Event needs) ---

def _varint(n: int) -> bytes:
  n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negative int64
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    if n:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _key(field: int, wire: int) -> bytes:
  return _varint(field << 3 | wire)


def _len_delimited(field: int, payload: bytes) -> bytes:
  return _key(field, 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, *, file_version: str | None = None,
                 scalars: dict[str, float] | None = None) -> bytes:
  out = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(int(step))
  if file_version is not None:
    out += _len_delimited(3, file_version.encode())
  if scalars:
    values = b"".join(
        _len_delimited(1, _len_delimited(1, tag.encode()) + _key(2, 5) + struct.pack("<f", v))
        for tag, v in scalars.items())
    out += _len_delimited(5, values)
  return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
  n = shift = 0
  while True:
    b = buf[i]
    i += 1
    n |= (b & 0x7F) << shift
    shift += 7
    if not b & 0x80:
      return n, i


def _fields(buf: bytes):
  """Yields (field, wire_type, value) of a protobuf message; value is raw bytes or an int."""
  i = 0
  while i < len(buf):
    key, i = _read_varint(buf, i)
    field, wire = key >> 3, key & 7
    if wire == 0:
      value, i = _read_varint(buf, i)
    elif wire == 1:
      value, i = buf[i:i + 8], i + 8
    elif wire == 2:
      n, i = _read_varint(buf, i)
      value, i = buf[i:i + n], i + n
    elif wire == 5:
      value, i = buf[i:i + 4], i + 4
    else:
      raise ValueError(f"Unsupported protobuf wire type {wire} (field {field}).")
    yield field, wire, value


def decode_event(buf: bytes) -> dict:
  """{'wall_time', 'step', 'file_version' (optional), 'scalars': [(tag, value)]}."""
  event = {"wall_time": 0.0, "step": 0, "scalars": []}
  for field, _, value in _fields(buf):
    if field == 1:
      event["wall_time"] = struct.unpack("<d", value)[0]
    elif field == 2:
      event["step"] = value - (1 << 64) if value >= 1 << 63 else value
    elif field == 3:
      event["file_version"] = value.decode()
    elif field == 5:
      for f, _, v in _fields(value):
        if f != 1:
          continue
        tag, simple = None, None
        for vf, _, vv in _fields(v):
          if vf == 1:
            tag = vv.decode()
          elif vf == 2:
            simple = struct.unpack("<f", vv)[0]
        if tag is not None and simple is not None:
          event["scalars"].append((tag, simple))
  return event


# --- TFRecord framing ---

def _record(data: bytes) -> bytes:
  header = struct.pack("<Q", len(data))
  return (header + struct.pack("<I", masked_crc32c(header)) + data
          + struct.pack("<I", masked_crc32c(data)))


def read_records(path: str):
  """Yields the payloads of a TFRecord file, checking both CRCs; stops at a torn final record."""
  with open(path, "rb") as f:
    buf = f.read()
  i = 0
  while i + 12 <= len(buf):
    header = buf[i:i + 8]
    (n,) = struct.unpack("<Q", header)
    (crc,) = struct.unpack("<I", buf[i + 8:i + 12])
    if crc != masked_crc32c(header):
      raise ValueError(f"{path}: bad length CRC at byte {i}; the file is corrupt.")
    if i + 12 + n + 4 > len(buf):
      return  # a writer killed mid-record; the earlier records are intact
    data = buf[i + 12:i + 12 + n]
    (crc,) = struct.unpack("<I", buf[i + 12 + n:i + 16 + n])
    if crc != masked_crc32c(data):
      raise ValueError(f"{path}: bad data CRC in the record at byte {i}; the file is corrupt.")
    yield data
    i += 16 + n


def read_scalars(path: str) -> list[tuple[int, str, float]]:
  """(step, tag, value) from an event file, or from all event files of a directory in order."""
  if os.path.isdir(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if "tfevents" in f)
  else:
    files = [path]
  out = []
  for f in files:
    for data in read_records(f):
      event = decode_event(data)
      out.extend((event["step"], tag, v) for tag, v in event["scalars"])
  return out


class EventWriter:
  """Appends scalar summaries to a new `events.out.tfevents.<time>.<host>` file in `logdir`."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    base = os.path.join(logdir, f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}")
    self.path, n = base, 0
    while True:
      try:
        self._f = open(self.path, "xb")  # never clobber a file of an earlier (resumed) run
        break
      except FileExistsError:
        n += 1
        self.path = f"{base}.{n}"
    self._write(encode_event(time.time(), 0, file_version="brain.Event:2"))
    self.flush()

  def _write(self, event: bytes):
    if self._f is None:
      raise ValueError(f"EventWriter for {self.path} is closed.")
    self._f.write(_record(event))

  def scalar(self, tag: str, value, step: int) -> None:
    self._write(encode_event(time.time(), step, scalars={tag: float(value)}))

  def scalars(self, values: dict, step: int) -> None:
    """Several tags at one step in one event."""
    self._write(encode_event(time.time(), step, scalars={k: float(v) for k, v in values.items()}))

  def flush(self) -> None:
    if self._f is not None:
      self._f.flush()

  def close(self) -> None:
    if self._f is not None:
      self._f.close()
      self._f = None
