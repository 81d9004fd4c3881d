"""Diff -> keystroke compiler (docs/DATA_PIPELINE.md §3).

Every emitted key is executed on a shadow Editor, so the cursor is always known
and the result is checked: after a file is edited its buffer must equal the new
text, otherwise `CompileError` is raised (an internal bug, never bad input).

Per file: OPEN path ENTER; then line-level `difflib` opcodes top to bottom.
Deleted line blocks use KILL_LINE; inserted blocks are typed; replaced blocks
under `REFINE_CHARS` are refined per character (DELETE x n, typing), larger ones
are killed and retyped. Navigation picks the cheapest of arrows, PGUP/PGDN plus
arrows, or GOTO for the row, then LEFT/RIGHT, HOME+RIGHT or END+LEFT for the
column. Deleted files: OPEN + REMOVE_FILE; renames: OPEN + RENAME new ENTER.
"""

import dataclasses
from difflib import SequenceMatcher

from data_pipelines import keys as K
from data_pipelines.editor import EDIT, Editor

REFINE_CHARS = 4000


class CompileError(AssertionError):
  """The shadow editor disagrees with the target text (a compiler bug)."""


class CapExceeded(Exception):
  """A commit needs more keys than the cap; the caller teleports it."""


@dataclasses.dataclass(frozen=True)
class Change:
  """One file change of a commit in the filtered view.

  kind: 'modify' (also add) with `text`; 'delete'; 'rename' from `old_path` with `text`.
  """

  kind: str
  path: str
  text: str | None = None
  old_path: str | None = None


def keepends(text: str) -> list[str]:
  """'a\\nb' -> ['a\\n', 'b']; 'a\\n' -> ['a\\n']; '' -> []."""
  parts = text.split("\n")
  out = [p + "\n" for p in parts[:-1]]
  if parts[-1]:
    out.append(parts[-1])
  return out


class Compiler:
  """Compiles file changes into keys, executing them on `editor`."""

  def __init__(self, editor: Editor, max_keys: int | None = None):
    self.ed = editor
    self.keys: list[int] = []
    self.max_keys = max_keys
    self._limit = None

  def emit(self, ks) -> None:
    press, out = self.ed.press, self.keys
    for k in ks:
      press(k)
      out.append(k)
    if self._limit is not None and len(out) > self._limit:
      raise CapExceeded(len(out))

  # -- commits ---------------------------------------------------------
  def commit(self, changes: list[Change]) -> list[int]:
    """Keys of one commit (ending with COMMIT); raises CapExceeded over the cap."""
    start = len(self.keys)
    self._limit = None if self.max_keys is None else start + self.max_keys
    try:
      order = {"delete": 0, "rename": 1, "modify": 2}
      for ch in sorted(changes, key=lambda c: (order[c.kind], c.path)):
        self.change(ch)
      self.emit([K.COMMIT])
    finally:
      self._limit = None
    return self.keys[start:]

  def change(self, ch: Change) -> None:
    files = self.ed.files
    if ch.kind == "delete":
      if ch.path in files:
        self.open(ch.path)
        self.emit([K.REMOVE_FILE])
      return
    if ch.kind == "rename":
      if ch.old_path in files and ch.path not in files:
        self.open(ch.old_path)
        self.emit([K.RENAME] + K.type_text(ch.path) + [K.ENTER])
      elif ch.old_path in files:
        self.change(Change("delete", ch.old_path))
    elif ch.kind != "modify":
      raise ValueError(f"unknown change kind {ch.kind!r}")
    self.open(ch.path)
    self.edit(ch.text)

  def open(self, path: str) -> None:
    if self.ed.path != path or self.ed.mode != EDIT:
      self.emit([K.OPEN] + K.type_text(path) + [K.ENTER])

  # -- one buffer ------------------------------------------------------
  def edit(self, new: str) -> None:
    """Turns the open buffer into `new`."""
    ed = self.ed
    old = "\n".join(ed.lines)
    if old == new:
      return
    a, b = keepends(old), keepends(new)
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
      if tag == "equal":
        continue
      if tag == "delete":
        self.goto(j1, 0)
        self.emit([K.KILL_LINE] * (i2 - i1))
      elif tag == "insert":
        self.goto(j1, 0)
        self.emit(K.type_text("".join(b[j1:j2])))
      else:
        self._replace(j1, "".join(a[i1:i2]), "".join(b[j1:j2]), i2 - i1)
    got = "\n".join(ed.lines)
    if got != new:
      raise CompileError(f"{ed.path}: buffer differs from the target after editing")

  def _replace(self, row: int, old: str, new: str, n_lines: int) -> None:
    if len(old) + len(new) > REFINE_CHARS:
      self.goto(row, 0)
      self.emit([K.KILL_LINE] * n_lines)
      self.emit(K.type_text(new))
      return
    sm = SequenceMatcher(None, old, new, autojunk=False)
    for tag, a1, a2, b1, b2 in sm.get_opcodes():
      if tag == "equal":
        continue
      head = new[:b1]
      nl = head.count("\n")
      col = b1 - head.rfind("\n") - 1 if nl else b1
      self.goto(row + nl, col)
      if tag != "insert":
        self.emit([K.DELETE] * (a2 - a1))
      if tag != "delete":
        self.emit(K.type_text(new[b1:b2]))

  def goto(self, row: int, col: int) -> None:
    """Moves the cursor to (row, col) with the cheapest key sequence."""
    ed = self.ed
    d = row - ed.row
    if d:
      n, R = abs(d), ed.text_rows
      arrow = K.DOWN if d > 0 else K.UP
      page = K.PGDN if d > 0 else K.PGUP
      digits = str(row + 1)
      costs = [(n, 0), (n // R + n % R, 1), (2 + len(digits), 2)]
      best = min(costs)[1]
      if best == 0:
        self.emit([arrow] * n)
      elif best == 1:
        self.emit([page] * (n // R) + [arrow] * (n % R))
      else:
        self.emit([K.GOTO] + K.type_text(digits) + [K.ENTER])
    c, length = ed.col, len(ed.lines[row])
    if c != col:
      opts = [(abs(col - c), 0), (1 + col, 1), (1 + length - col, 2)]
      best = min(opts)[1]
      if best == 0:
        self.emit([K.RIGHT if col > c else K.LEFT] * abs(col - c))
      elif best == 1:
        self.emit([K.HOME] + [K.RIGHT] * col)
      else:
        self.emit([K.END] + [K.LEFT] * (length - col))
    if (ed.row, ed.col) != (row, col):
      raise CompileError(f"{ed.path}: cursor at {(ed.row, ed.col)}, wanted {(row, col)}")
