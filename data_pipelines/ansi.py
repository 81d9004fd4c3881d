"""Frames as ANSI terminal output (asciicast export and the pyte test oracle).

Each frame is written as the rows that changed since the previous frame:
CUP to the row, then runs of equal style with 24-bit SGR colours, then CUP to
the cursor. Codepoint 0x7F is shown as U+2421 and padding (0) as a space.
"""

import json

import numpy as np

from data_pipelines import syntax as S

PLACEHOLDER = "\u2421"
_CHARS = [" " if i == 0 else PLACEHOLDER if i >= 0x7F or i < 0x20 else chr(i) for i in range(256)]
_SGR = ["\x1b[38;2;{};{};{};48;2;{};{};{}m".format(*S.PALETTE[s]) for s in range(S.NUM_STYLES)]


def row_text(cp_row: np.ndarray) -> str:
  return "".join(_CHARS[i] for i in cp_row.tolist())


def frame_ansi(cp: np.ndarray, st: np.ndarray, cursor, prev=None) -> str:
  """ANSI bytes (as str) drawing frame (cp, st) over `prev` = (cp, st) or a blank screen."""
  out = []
  for r in range(cp.shape[0]):
    if prev is not None and (prev[0][r] == cp[r]).all() and (prev[1][r] == st[r]).all():
      continue
    out.append(f"\x1b[{r + 1};1H")
    chars, styles = cp[r].tolist(), st[r].tolist()
    start = 0
    for c in range(1, len(chars) + 1):
      if c == len(chars) or styles[c] != styles[start]:
        out.append(_SGR[styles[start]] + "".join(_CHARS[i] for i in chars[start:c]))
        start = c
  out.append(f"\x1b[0m\x1b[{int(cursor[0]) + 1};{int(cursor[1]) + 1}H")
  return "".join(out)


def cast_lines(screens, rows: int, cols: int, title: str, fps: float = 30.0):
  """The lines of an asciicast v2 file: a header, then one output event per screen.

  screens: (cp, st, cursor) per frame, drawn as differences from the frame before."""
  yield json.dumps({"version": 2, "width": cols, "height": rows, "title": title})
  prev = None
  for i, (cp, st, cur) in enumerate(screens):
    yield json.dumps([round(i / fps, 4), "o", frame_ansi(cp, st, cur, prev)])
    prev = (cp, st)
