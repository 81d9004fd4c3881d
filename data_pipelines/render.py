"""Screen of an Editor as a (rows, cols) grid of codepoints and style ids.

Layout: rows 0..R-2 show the buffer from (top, left) behind a 6-column gutter of
1-based line numbers; row R-1 is the status line (` path` left, `line:col `
right) or the active prompt (`goto: 12`). Tabs expand to stops of 8; no wrap.
The cursor cell gets style | CURSOR (inverted colours). `Renderer` redraws only
rows whose content changed, so a keystroke costs about one line of work.
"""

import numpy as np

from data_pipelines import editor as E
from data_pipelines import syntax as S

GUTTER = 6
_LABEL = {E.GOTO: "goto: ", E.OPEN: "open: ", E.RENAME: "rename: "}
_CACHE_LIMIT = 200_000


def check_size(rows: int, cols: int) -> None:
  if rows < 3 or cols < GUTTER + 10 or rows > 1024 or cols > 1024:
    raise ValueError(
      f"frame size {rows}x{cols} unsupported: need 3 <= rows and "
      f"{GUTTER + 10} <= cols, both <= 1024"
    )


def new_editor(rows: int, cols: int, files: dict[str, str] | None = None) -> E.Editor:
  """Editor whose viewport matches a rows x cols frame."""
  check_size(rows, cols)
  return E.Editor(rows - 1, cols - GUTTER, files)


class Renderer:
  """Incremental renderer; `draw` returns its internal (cp, st) buffers and the cursor."""

  def __init__(self, rows: int, cols: int):
    check_size(rows, cols)
    self.rows, self.cols = rows, cols
    self.tw = cols - GUTTER
    self.cp = np.full((rows, cols), 0x20, np.uint8)
    self.st = np.full((rows, cols), S.TEXT, np.uint8)
    self._rowkey: list = [None] * (rows - 1)
    self._statuskey = None
    self._cache: dict[str, tuple[bytes, bytes]] = {}
    self._blank_cp = b" " * cols
    self._blank_st = bytes([S.GUTTER]) * GUTTER + bytes([S.TEXT]) * self.tw

  def _cells(self, line: str) -> tuple[bytes, bytes]:
    ent = self._cache.get(line)
    if ent is None:
      exp = line.expandtabs(E.TAB_STOP) if "\t" in line else line
      ent = (exp.encode("latin-1"), S.highlight(exp))
      if len(self._cache) >= _CACHE_LIMIT:
        self._cache.clear()
      self._cache[line] = ent
    return ent

  def draw(self, ed: E.Editor) -> tuple[np.ndarray, np.ndarray, int, int]:
    lines, top, left, tw = ed.lines, ed.top, ed.left, self.tw
    n = len(lines) if ed.path is not None else 0
    cp, st, keys = self.cp, self.st, self._rowkey
    for i in range(self.rows - 1):
      ln = top + i
      if ln < n:
        line = lines[ln]
        key = (ln, line, left)
        if keys[i] == key:
          continue
        keys[i] = key
        b, s = self._cells(line)
        b, s = b[left : left + tw], s[left : left + tw]
        pad = tw - len(b)
        num = str(ln + 1)[-GUTTER + 1 :].rjust(GUTTER - 1).encode() + b" "
        cp[i] = np.frombuffer(num + b + b" " * pad, np.uint8)
        st[i] = np.frombuffer(bytes([S.GUTTER]) * GUTTER + s + bytes([S.TEXT]) * pad, np.uint8)
      elif keys[i] != ():
        keys[i] = ()
        cp[i] = np.frombuffer(self._blank_cp, np.uint8)
        st[i] = np.frombuffer(self._blank_st, np.uint8)
    cur = self._status(ed)
    if ed.mode == E.EDIT:
      r = ed.row - top if ed.path is not None else 0
      c = GUTTER + E.display_col(lines[ed.row], ed.col) - left if ed.path is not None else GUTTER
      cur = (r, c)
    return cp, st, cur[0], cur[1]

  def _status(self, ed: E.Editor) -> tuple[int, int]:
    key = (ed.mode, ed.prompt, ed.path, ed.row, ed.col)
    cols, last = self.cols, self.rows - 1
    if ed.mode != E.EDIT:
      text = _LABEL[ed.mode] + ed.prompt
      if len(text) > cols - 1:
        text = text[len(text) - cols + 1 :]
      cur = (last, len(text))
      style = S.PROMPT
    else:
      cur = (0, 0)
      style = S.STATUS
    if key == self._statuskey:
      return cur
    self._statuskey = key
    if ed.mode == E.EDIT:
      if ed.path is None:
        text = " [no file]"
      else:
        pos = f"{ed.row + 1}:{ed.col + 1} "
        room = cols - len(pos) - 1
        path = ed.path if len(ed.path) + 1 <= room else "<" + ed.path[-(room - 2) :]
        text = (" " + path).ljust(cols - len(pos))[: cols - len(pos)] + pos
    self.cp[last] = np.frombuffer(text.ljust(cols)[:cols].encode("latin-1"), np.uint8)
    self.st[last] = style
    return cur


def to_rgb(cp: np.ndarray, st: np.ndarray) -> np.ndarray:
  """Contract frames (..., rows, cols, 7) from codepoint and style grids."""
  out = np.empty(cp.shape + (7,), np.uint8)
  out[..., 0] = cp
  out[..., 1:] = S.PALETTE[st]
  return out


def frame(ed: E.Editor, rows: int, cols: int) -> np.ndarray:
  """One contract frame (rows, cols, 7) of `ed` (slow path for tests and tools)."""
  cp, st, r, c = Renderer(rows, cols).draw(ed)
  st = st.copy()
  st[r, c] |= S.CURSOR
  return to_rgb(cp, st)
