"""Compact frame storage and the expansion to contract frames.

A cell is one uint16 `codepoint | style << 7` (codepoints are < 0x80). A window
of L frames x (L, H, W) is stored as the sparse XOR-delta over time,
d[t] = x[t] ^ x[t-1] (d[0] = x[0]): the flat positions of its non-zero cells
(gap-coded uint32) and their values (uint16), zlib-compressed. Consecutive
frames differ in a few cells, so a record is a few bytes per frame and decodes
with one scatter and one XOR-accumulate; each record decodes on its own.
`to_rgb` expands cells to the (..., H, W, 7) uint8 contract with one 64-bit
palette gather written with overlapping 7-byte strides; `CELL_LUT[x]` is the same
expansion as a table (for a device-side gather: readers can hand packed cells,
2 bytes each, to the accelerator instead of 7).
"""

import struct
import zlib

import numpy as np

from data_pipelines import syntax as S

LEVEL = 6
_N_CELLS = S.NUM_STYLES << 7


def cells(cp: np.ndarray, st: np.ndarray) -> np.ndarray:
  return cp.astype(np.uint16) | (st.astype(np.uint16) << 7)


def split_cells(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(codepoints, style ids) of cells."""
  return (x & 0x7F).astype(np.uint8), (x >> 7).astype(np.uint8)


def encode_frames(x: np.ndarray, level: int = LEVEL) -> bytes:
  """Record bytes of cells x (L, H, W) uint16."""
  return Encoder().encode(x, level)


class Encoder:
  """encode_frames with reused buffers (fresh large arrays cost page faults)."""

  def __init__(self):
    self._x = self._d = None

  def cells(self, cp: np.ndarray, st: np.ndarray) -> np.ndarray:
    if self._x is None or self._x.shape != cp.shape:
      self._x = np.empty(cp.shape, np.uint16)
      self._d = np.empty(cp.shape, np.uint16)
    x = self._x
    np.left_shift(st, 7, out=x, dtype=np.uint16)
    x |= cp
    return x

  def encode(self, x: np.ndarray, level: int = LEVEL) -> bytes:
    if self._d is None or self._d.shape != x.shape:
      self._d = np.empty(x.shape, np.uint16)
    flat, d = x.reshape(len(x), -1), self._d.reshape(len(x), -1)
    d[0] = flat[0]
    np.bitwise_xor(flat[1:], flat[:-1], out=d[1:])
    return _pack(d.ravel(), level)


def _nonzero(d: np.ndarray) -> np.ndarray:
  """Flat indices of the non-zero cells, scanning 4 cells at a time."""
  if d.size % 4:
    return np.flatnonzero(d)
  blocks = np.flatnonzero(d.view(np.uint64))
  cand = (blocks[:, None] * 4 + np.arange(4)).ravel()
  return cand[d[cand] != 0]


def _pack(d: np.ndarray, level: int) -> bytes:
  pos = _nonzero(d)
  gaps = np.diff(pos, prepend=0).astype("<u4")
  payload = struct.pack("<I", len(pos)) + gaps.tobytes() + d[pos].astype("<u2").tobytes()
  return zlib.compress(payload, level)


def decode_frames(blob: bytes, length: int, rows: int, cols: int) -> np.ndarray:
  """Cells (L, H, W) uint16 of one record."""
  raw = zlib.decompress(blob)
  (n,) = struct.unpack_from("<I", raw)
  pos = np.cumsum(np.frombuffer(raw, "<u4", n, 4), dtype=np.int64)
  d = np.zeros(length * rows * cols, np.uint16)
  d[pos] = np.frombuffer(raw, "<u2", n, 4 + 4 * n)
  d = d.reshape(length, -1)
  if d.shape[1] % 4 == 0:
    np.bitwise_xor.accumulate(d.view(np.uint64), axis=0, out=d.view(np.uint64))
  else:
    np.bitwise_xor.accumulate(d, axis=0, out=d)
  return d.reshape(length, rows, cols)


_LUT = np.zeros((_N_CELLS, 8), np.uint8)
_LUT[:, 0] = np.arange(_N_CELLS) & 0x7F
_LUT[:, 1:7] = S.PALETTE[np.arange(_N_CELLS) >> 7]
_LUT64 = _LUT.view(np.uint64)[:, 0].copy()
CELL_LUT = _LUT[:, :7].copy()  # (cells, 7) uint8: cell value -> codepoint, fg RGB, bg RGB


def to_rgb(x: np.ndarray) -> np.ndarray:
  """Contract frames (..., H, W, 7) uint8 of cells x: codepoint, fg RGB, bg RGB."""
  n = x.size
  buf = np.empty(7 * n + 1, np.uint8)
  # 8-byte palette entries written every 7 bytes in increasing order: each write's
  # spare byte is overwritten by the next cell (the last lands in the extra byte).
  dst = np.ndarray((n,), np.uint64, buffer=buf, strides=(7,))
  dst[...] = _LUT64[x.ravel()]
  return buf[: 7 * n].reshape(x.shape + (7,))
