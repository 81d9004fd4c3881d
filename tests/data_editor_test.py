"""Key-by-key editor semantics (docs/DATA_PIPELINE.md §9, test 1)."""

import pytest

from data_pipelines import keys as K
from data_pipelines.editor import EDIT, GOTO, OPEN, Editor


def run(text, keys, pos=(0, 0)):
  ed = Editor(5, 20, {"f.c": text})
  ed.press_all([K.OPEN, *K.type_text("f.c"), K.ENTER])
  ed.row, ed.col = pos
  ed.press_all(keys)
  return ed.text("f.c"), (ed.row, ed.col)


CASES = [
  # (name, text, start, keys, expected text, expected cursor)
  ("type", "ab", (0, 1), K.type_text("xy"), "axyb", (0, 3)),
  ("tab", "ab", (0, 0), [K.TAB], "\tab", (0, 1)),
  ("enter split", "abcd", (0, 2), [K.ENTER], "ab\ncd", (1, 0)),
  ("enter at end", "ab", (0, 2), [K.ENTER], "ab\n", (1, 0)),
  ("backspace origin", "ab", (0, 0), [K.BACKSPACE], "ab", (0, 0)),
  ("backspace col0 joins", "ab\ncd", (1, 0), [K.BACKSPACE], "abcd", (0, 2)),
  ("backspace char", "abc", (0, 2), [K.BACKSPACE], "ac", (0, 1)),
  ("delete char", "abc", (0, 1), [K.DELETE], "ac", (0, 1)),
  ("delete eol joins", "ab\ncd", (0, 2), [K.DELETE], "abcd", (0, 2)),
  ("delete eof", "ab", (0, 2), [K.DELETE], "ab", (0, 2)),
  ("kill line", "a\nb\nc", (1, 1), [K.KILL_LINE], "a\nc", (1, 0)),
  ("kill last line clears", "a\nb", (1, 1), [K.KILL_LINE], "a\n", (1, 0)),
  ("kill empty last line", "a\n", (1, 0), [K.KILL_LINE], "a\n", (1, 0)),
  ("kill only line", "abc", (0, 2), [K.KILL_LINE], "", (0, 0)),
  ("down clamps col", "abcd\nx", (0, 3), [K.DOWN], "abcd\nx", (1, 1)),
  ("up at top", "ab", (0, 1), [K.UP], "ab", (0, 1)),
  ("no goal column", "abcd\nx\nabcd", (0, 3), [K.DOWN, K.DOWN], "abcd\nx\nabcd", (2, 1)),
  ("left stays in line", "ab\ncd", (1, 0), [K.LEFT], "ab\ncd", (1, 0)),
  ("right stays in line", "ab\ncd", (0, 2), [K.RIGHT], "ab\ncd", (0, 2)),
  ("home end", "abc", (0, 1), [K.END], "abc", (0, 3)),
  (
    "pgdn clamps",
    "\n".join("abcdefghij"),
    (0, 0),
    [K.PGDN, K.PGDN, K.PGDN],
    "\n".join("abcdefghij"),
    (9, 0),
  ),
  ("pgup", "\n".join("abcdefghij"), (9, 0), [K.PGUP], "\n".join("abcdefghij"), (4, 0)),
  ("goto", "a\nbb\nc", (0, 0), [K.RIGHT, K.GOTO, *K.type_text("2"), K.ENTER], "a\nbb\nc", (1, 0)),
  ("goto past eof", "a\nb", (0, 0), [K.GOTO, *K.type_text("99"), K.ENTER], "a\nb", (1, 0)),
  ("goto zero clamps", "a\nb", (1, 0), [K.GOTO, *K.type_text("0"), K.ENTER], "a\nb", (0, 0)),
  ("goto ignores letters", "a\nb", (0, 0), [K.GOTO, *K.type_text("x2"), K.ENTER], "a\nb", (1, 0)),
  (
    "goto prompt backspace",
    "a\nb\nc",
    (0, 0),
    [K.GOTO, *K.type_text("23"), K.BACKSPACE, K.ENTER],
    "a\nb\nc",
    (1, 0),
  ),
  ("goto empty", "a\nb", (1, 0), [K.GOTO, K.ENTER], "a\nb", (1, 0)),
  ("placeholder char", "", (0, 0), [K.char_key("\x7f")], "\x7f", (0, 1)),
]


@pytest.mark.parametrize("name,text,pos,keys,want,cursor", CASES, ids=[c[0] for c in CASES])
def test_key(name, text, pos, keys, want, cursor):
  assert run(text, keys, pos) == (want, cursor)


def test_open_new_path_and_back():
  ed = Editor(5, 20, {"a.c": "x\ny"})
  ed.press_all([K.OPEN, *K.type_text("a.c"), K.ENTER, K.DOWN])
  assert (ed.path, ed.row) == ("a.c", 1)
  ed.press_all([K.OPEN, *K.type_text("new.c"), K.ENTER])
  assert ed.path == "new.c" and ed.text() == "" and (ed.row, ed.col) == (0, 0)
  ed.press_all(K.type_text("hi"))
  ed.press_all([K.OPEN, *K.type_text("a.c"), K.ENTER])
  assert ed.path == "a.c" and (ed.row, ed.col) == (0, 0)
  assert ed.file_texts() == {"a.c": "x\ny", "new.c": "hi"}


def test_prompt_modes_and_backspace():
  ed = Editor(5, 20, {})
  ed.press(K.OPEN)
  assert ed.mode == OPEN
  ed.press_all(K.type_text("ab"))
  ed.press_all([K.BACKSPACE, K.BACKSPACE, K.BACKSPACE])
  assert ed.prompt == ""
  ed.press_all([K.UP, K.KILL_LINE, K.DELETE])  # ignored in a prompt
  ed.press_all(K.type_text("c.c") + [K.ENTER])
  assert ed.mode == EDIT and ed.path == "c.c"
  ed.press(K.GOTO)
  assert ed.mode == GOTO


def test_keys_without_file_are_noops():
  ed = Editor(5, 20, {"a": "x"})
  ed.press_all(K.type_text("abc") + [K.ENTER, K.KILL_LINE, K.REMOVE_FILE, K.DOWN, K.COMMIT])
  assert ed.file_texts() == {"a": "x"} and ed.path is None


def test_remove_and_rename():
  ed = Editor(5, 20, {"a": "x", "b": "y"})
  ed.press_all([K.OPEN, *K.type_text("a"), K.ENTER, K.RENAME, *K.type_text("b"), K.ENTER])
  assert ed.path == "a"  # existing target: ignored
  ed.press_all([K.RENAME, *K.type_text("c"), K.ENTER])
  assert ed.path == "c" and ed.file_texts() == {"b": "y", "c": "x"}
  ed.press(K.REMOVE_FILE)
  assert ed.path is None and ed.file_texts() == {"b": "y"}


def test_scroll_follows_cursor():
  ed = Editor(3, 10, {"f": "\n".join(["x" * 30] * 10)})
  ed.press_all([K.OPEN, K.char_key("f"), K.ENTER])
  ed.press_all([K.DOWN] * 5)
  assert (ed.top, ed.row) == (3, 5)
  ed.press(K.END)
  assert ed.left == 30 - 10 + 1
  ed.press_all([K.HOME, K.UP, K.UP, K.UP, K.UP])
  assert (ed.top, ed.left) == (1, 0)


def test_tab_display_column():
  ed = Editor(3, 10, {"f": "\tab" + "\tc" * 3})
  ed.press_all([K.OPEN, K.char_key("f"), K.ENTER, K.END])
  assert ed.left == 8 * 4 + 1 - 10 + 1


def test_key_bytes_unique():
  bs = [b for b in K.KEY_BYTES if b is not None]
  assert len(bs) == len(set(bs))
  assert (
    K.key_bytes(K.char_key("\x7f")) == "\ufffd".encode() and K.key_bytes(K.BACKSPACE) == b"\x7f"
  )
