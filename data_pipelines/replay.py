"""Replays keys on a fresh editor and renders the frame shown before each key.

This is the only way frames are made: the build, `--verify` and the tests all
call `replay`, so frames are a pure function of (start files, keys, size).
"""

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from data_pipelines import keys as K
from data_pipelines import render
from data_pipelines import syntax as S
from data_pipelines.editor import Editor


@dataclasses.dataclass
class Window:
  """L consecutive steps; steps past the end of the keys are padding (valid False)."""

  cp: np.ndarray  # (L, H, W) uint8 codepoints
  st: np.ndarray  # (L, H, W) uint8 style ids, cursor cell | CURSOR
  cursor: np.ndarray  # (L, 2) int16 screen row, col of the cursor
  mode: np.ndarray  # (L,) uint8 editor mode
  actions: np.ndarray  # (L,) uint8 key ids
  valid: np.ndarray  # (L,) bool


def empty_window(length: int, rows: int, cols: int) -> Window:
  return Window(
    np.zeros((length, rows, cols), np.uint8),
    np.zeros((length, rows, cols), np.uint8),
    np.zeros((length, 2), np.int16),
    np.zeros(length, np.uint8),
    np.zeros(length, np.uint8),
    np.zeros(length, bool),
  )


def replay(
  files: dict[str, str],
  keys,
  rows: int,
  cols: int,
  window: int,
  on_commit: Callable[[Editor, int], None] | None = None,
  reuse: bool = False,
) -> Iterator[Window]:
  """Yields windows of `window` steps; calls on_commit(editor, step) after each COMMIT.

  With reuse=True every yielded Window is the same buffer, refilled (use it
  before advancing): this avoids page-faulting fresh memory for each window.
  """
  ed = render.new_editor(rows, cols, files)
  rend = render.Renderer(rows, cols)
  keys = [int(k) for k in keys]
  cursor_flag = S.CURSOR
  w = empty_window(window, rows, cols)
  for start in range(0, max(len(keys), 1), window):
    if not reuse and start:
      w = empty_window(window, rows, cols)
    chunk = keys[start : start + window]
    out_cp, out_st, curs, modes = w.cp, w.st, [], []
    for i, k in enumerate(chunk):
      cp, st, r, c = rend.draw(ed)
      out_cp[i] = cp
      out_st[i] = st
      out_st[i, r, c] |= cursor_flag
      curs.append((r, c))
      modes.append(ed.mode)
      ed.press(k)
      if k == K.COMMIT and on_commit is not None:
        on_commit(ed, start + i)
    n = len(chunk)
    if n < window and reuse:
      for a in (w.cp, w.st, w.cursor, w.mode, w.actions, w.valid):
        a[n:] = 0
    if n:
      w.cursor[:n] = curs
      w.mode[:n] = modes
      w.actions[:n] = chunk
      w.valid[:n] = True
    yield w


def replay_frames(files: dict[str, str], keys, rows: int, cols: int) -> Window:
  """All steps of `keys` as one unpadded Window (tests and small tools)."""
  n = len(keys)
  ws = list(replay(files, keys, rows, cols, max(n, 1)))
  w = ws[0]
  return Window(w.cp[:n], w.st[:n], w.cursor[:n], w.mode[:n], w.actions[:n], w.valid[:n])
