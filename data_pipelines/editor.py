"""Deterministic nano-style editor driven by key ids (keys.py).

State: a file table {path: lines}, the open file, the cursor (row, col in
characters), a mode (EDIT, GOTO or OPEN/RENAME prompt with its text) and the
viewport scroll (top line, left display column), which follows the cursor
minimally. Semantics: characters and TAB insert; ENTER splits;
BACKSPACE at column 0 and DELETE at end of line join lines; UP/DOWN/PGUP/PGDN
clamp the column (no goal column); LEFT/RIGHT stay in the line; KILL_LINE deletes
the line and its newline (the last line is cleared); GOTO n goes to line n
(1-based, clamped) column 0; OPEN p shows p at (0, 0), creating an empty buffer
for a new path; REMOVE_FILE deletes the open file; RENAME p renames it (ignored
when p is empty or exists). Keys that do not apply are no-ops.
"""

from data_pipelines import keys as K

EDIT, GOTO, OPEN, RENAME = 0, 1, 2, 3
TAB_STOP = 8


def display_col(line: str, col: int) -> int:
  """Display column of character index `col` with tab stops of 8."""
  head = line[:col]
  return len(head.expandtabs(TAB_STOP)) if "\t" in head else col


class Editor:
  """The editor; `text_rows`/`text_cols` are the viewport size used for scrolling."""

  def __init__(self, text_rows: int, text_cols: int, files: dict[str, str] | None = None):
    if text_rows < 1 or text_cols < 1:
      raise ValueError(f"viewport {text_rows}x{text_cols} is too small")
    self.text_rows, self.text_cols = text_rows, text_cols
    self.files: dict[str, list[str]] = {p: t.split("\n") for p, t in (files or {}).items()}
    self.path: str | None = None
    self.lines: list[str] = [""]  # open buffer (aliases files[path]) or a scratch line
    self.row = self.col = 0
    self.top = self.left = 0
    self.mode = EDIT
    self.prompt = ""

  # -- queries ---------------------------------------------------------
  def text(self, path: str | None = None) -> str:
    return "\n".join(self.files[path or self.path])

  def file_texts(self) -> dict[str, str]:
    return {p: "\n".join(ls) for p, ls in self.files.items()}

  # -- keys ------------------------------------------------------------
  def press(self, k: int) -> None:
    if self.mode != EDIT:
      self._prompt_key(k)
    elif self.path is not None:
      self._edit_key(k)
    elif k == K.GOTO or k == K.OPEN:
      self._edit_key(k)
    self._follow()

  def press_all(self, ks) -> None:
    for k in ks:
      self.press(int(k))

  def _edit_key(self, k: int) -> None:
    lines, r, c = self.lines, self.row, self.col
    line = lines[r]
    if K.CHAR0 <= k < K.CHAR0 + 96 or k == K.TAB:
      ch = "\t" if k == K.TAB else chr(k - K.CHAR0 + 0x20)
      lines[r] = line[:c] + ch + line[c:]
      self.col = c + 1
    elif k == K.ENTER:
      lines[r : r + 1] = [line[:c], line[c:]]
      self.row, self.col = r + 1, 0
    elif k == K.BACKSPACE:
      if c > 0:
        lines[r] = line[: c - 1] + line[c:]
        self.col = c - 1
      elif r > 0:
        self.col = len(lines[r - 1])
        lines[r - 1 : r + 1] = [lines[r - 1] + line]
        self.row = r - 1
    elif k == K.DELETE:
      if c < len(line):
        lines[r] = line[:c] + line[c + 1 :]
      elif r + 1 < len(lines):
        lines[r : r + 2] = [line + lines[r + 1]]
    elif K.UP <= k <= K.PGDN:
      self._move(k)
    elif k == K.KILL_LINE:
      if r + 1 < len(lines):
        del lines[r]
      else:
        lines[r] = ""
      self.col = 0
    elif k == K.GOTO:
      self.mode, self.prompt = GOTO, ""
    elif k == K.OPEN:
      self.mode, self.prompt = OPEN, ""
    elif k == K.RENAME:
      self.mode, self.prompt = RENAME, ""
    elif k == K.REMOVE_FILE:
      del self.files[self.path]
      self._show(None)

  def _move(self, k: int) -> None:
    lines, r, c = self.lines, self.row, self.col
    if k == K.LEFT:
      self.col = max(c - 1, 0)
    elif k == K.RIGHT:
      self.col = min(c + 1, len(lines[r]))
    elif k == K.HOME:
      self.col = 0
    elif k == K.END:
      self.col = len(lines[r])
    else:
      step = {K.UP: -1, K.DOWN: 1, K.PGUP: -self.text_rows, K.PGDN: self.text_rows}[k]
      self.row = r = min(max(r + step, 0), len(lines) - 1)
      self.col = min(c, len(lines[r]))

  def _prompt_key(self, k: int) -> None:
    if K.CHAR0 <= k < K.CHAR0 + 96:
      ch = chr(k - K.CHAR0 + 0x20)
      if self.mode != GOTO or ch.isdigit():
        self.prompt += ch
    elif k == K.BACKSPACE:
      self.prompt = self.prompt[:-1]
    elif k == K.ENTER:
      mode, arg = self.mode, self.prompt
      self.mode, self.prompt = EDIT, ""
      if mode == GOTO:
        if arg and self.path is not None:
          self.row = min(max(int(arg), 1), len(self.lines)) - 1
          self.col = 0
      elif mode == OPEN:
        if arg:
          self._show(arg)
      elif arg and arg not in self.files:  # RENAME
        self.files[arg] = self.files.pop(self.path)
        self.path = arg

  def _show(self, path: str | None) -> None:
    if path is None:
      self.path, self.lines = None, [""]
    else:
      self.path = path
      self.lines = self.files.setdefault(path, [""])
    self.row = self.col = self.top = self.left = 0

  def _follow(self) -> None:
    """Minimal scroll keeping the cursor inside the viewport."""
    r = self.row
    if r < self.top:
      self.top = r
    elif r >= self.top + self.text_rows:
      self.top = r - self.text_rows + 1
    dc = display_col(self.lines[r], self.col)
    if dc < self.left:
      self.left = dc
    elif dc >= self.left + self.text_cols:
      self.left = dc - self.text_cols + 1
