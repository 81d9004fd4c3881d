"""Renderer invariants, frames = f(actions), and the pyte oracle.

Tests 2, 5 and 6 of docs/DATA_PIPELINE.md §9.
"""

import random

import numpy as np
import pyte

from data_pipelines import ansi, compiler, render, replay
from data_pipelines import keys as K
from data_pipelines import syntax as S
from data_pipelines.editor import EDIT

ROWS, COLS = 12, 40
SRC = {
  "src/main.c": '#include <stdio.h>\n/* entry */\nint main(void) {\n\tchar *s = "hi";\n'
  "\treturn 42; // done\n}\n",
  "long.c": "\n".join(f"int v{i} = {i};\t/* " + "x" * (i * 3) + " */" for i in range(60)) + "\n",
}


def session_keys(seed=0, n_commits=6):
  """Keys of a few random edits of SRC (opening, scrolling, prompts, rename, delete)."""
  rng = random.Random(seed)
  ed = render.new_editor(ROWS, COLS)
  comp = compiler.Compiler(ed)
  comp.commit([compiler.Change("modify", p, t) for p, t in SRC.items()])
  for i in range(n_commits):
    path = rng.choice(sorted(ed.files))
    lines = ed.text(path).split("\n")
    j = rng.randrange(len(lines))
    lines[j : j + rng.randrange(3)] = [f"\tx{i} = {'y' * rng.randrange(50)};"]
    comp.commit([compiler.Change("modify", path, "\n".join(lines))])
  comp.commit([compiler.Change("rename", "moved.c", "int z;\n", old_path="src/main.c")])
  comp.commit([compiler.Change("delete", "long.c")])
  return comp.keys


def test_frames_are_a_function_of_actions():
  keys = session_keys()
  a = replay.replay_frames({}, keys, ROWS, COLS)
  windows = list(replay.replay({}, keys, ROWS, COLS, 37))
  b_cp = np.concatenate([w.cp for w in windows])[: len(keys)]
  b_st = np.concatenate([w.st for w in windows])[: len(keys)]
  assert np.array_equal(a.cp, b_cp) and np.array_equal(a.st, b_st)
  assert not windows[-1].valid[len(keys) % 37 :].any()
  # The incremental renderer equals a fresh (non-incremental) render of every state.
  ed = render.new_editor(ROWS, COLS)
  for t, k in enumerate(keys):
    if t % 7 == 0:
      f = render.frame(ed, ROWS, COLS)
      assert np.array_equal(f[..., 0], a.cp[t]), t
      assert np.array_equal(f[..., 1:], S.PALETTE[a.st[t]]), t
    ed.press(k)


def test_render_invariants():
  keys = session_keys(1)
  w = replay.replay_frames({}, keys, ROWS, COLS)
  ed = render.new_editor(ROWS, COLS)
  tw = COLS - render.GUTTER
  for t, k in enumerate(keys):
    cp, st, (r, c) = w.cp[t], w.st[t], w.cursor[t]
    assert 0 <= r < ROWS and 0 <= c < COLS
    assert np.count_nonzero(st & S.CURSOR) == 1 and st[r, c] & S.CURSOR
    assert ((cp >= 0x20) & (cp <= 0x7F)).all()
    status = bytes(cp[-1]).decode()
    if ed.mode == EDIT and ed.path is not None:
      assert status.rstrip().endswith(f"{ed.row + 1}:{ed.col + 1}")
      assert ed.path[:5] in status or status.startswith(" <")
      # Oracle for the viewport: expanded lines sliced at `left`.
      for i in range(ROWS - 1):
        ln = ed.top + i
        want = ed.lines[ln].expandtabs(8)[ed.left : ed.left + tw] if ln < len(ed.lines) else ""
        got = bytes(cp[i, render.GUTTER :]).decode().rstrip()
        assert got == want.rstrip(), (t, i)
        num = bytes(cp[i, : render.GUTTER]).decode().strip()
        assert num == (str(ln + 1) if ln < len(ed.lines) else "")
    elif ed.mode != EDIT:
      assert status.startswith(("goto: ", "open: ", "rename: ")) and r == ROWS - 1
    ed.press(k)
  assert (w.st == S.KEYWORD).any() and (w.st == S.STRING).any()
  assert (w.st == S.COMMENT).any() and (w.st == S.NUMBER).any()


def test_horizontal_scroll_and_tabs():
  ed = render.new_editor(ROWS, COLS, {"t.c": "\tA\tB" + "c" * 60})
  ed.press_all([K.OPEN, *K.type_text("t.c"), K.ENTER, K.RIGHT])
  f = render.frame(ed, ROWS, COLS)
  g = render.GUTTER
  assert bytes(f[0, g : g + 10, 0]).decode() == " " * 8 + "A "
  assert f[0, g + 8, 1:4].tolist() == list(S.PALETTE[S.TEXT, 3:])  # cursor cell inverted
  ed.press(K.END)
  f = render.frame(ed, ROWS, COLS)
  assert ed.left > 0 and f[0, COLS - 1, 0] == 0x20  # cursor past the last char
  assert bytes(f[0, g:-1, 0]).decode() == ("\tA\tB" + "c" * 60).expandtabs(8)[ed.left :]


def test_pyte_oracle():
  keys = session_keys(2, n_commits=3)
  w = replay.replay_frames({}, keys, ROWS, COLS)
  screen = pyte.Screen(COLS, ROWS)
  stream = pyte.Stream(screen)
  prev = None
  for t in range(len(keys)):
    stream.feed(ansi.frame_ansi(w.cp[t], w.st[t], w.cursor[t], prev))
    prev = (w.cp[t], w.st[t])
    want = [ansi.row_text(row) for row in w.cp[t]]
    assert screen.display == want, t
    assert (screen.cursor.y, screen.cursor.x) == tuple(w.cursor[t])
    if t % 50 == 0:
      for r in range(ROWS):
        for c in range(COLS):
          fg = S.PALETTE[w.st[t, r, c], :3]
          assert screen.buffer[r][c].fg == "".join(f"{v:02x}" for v in fg)
