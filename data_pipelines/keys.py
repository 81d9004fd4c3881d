"""Key vocabulary of the editor (docs/DATA_PIPELINE.md §3) and its fbamtrain-style byte encoding.

Key ids fit in uint8 and are what the dataset stores (one key per frame):

| ids | keys |
|---|---|
| 0-3 | PAD, BOS (segment start / reset), EOS, COMMIT (marker after each commit) |
| 4-7 | ENTER, TAB, BACKSPACE, DELETE |
| 8-15 | UP, DOWN, LEFT, RIGHT, HOME, END, PGUP, PGDN |
| 16-18 | KILL_LINE, GOTO (prompt: digits, ENTER), OPEN (prompt: path, ENTER) |
| 19-114 | characters 0x20-0x7F (0x7F stands for any character outside 0x20-0x7E) |
| 115-116 | REMOVE_FILE (delete the open file), RENAME (prompt: new path, ENTER) |
| 117-127 | reserved |

REMOVE_FILE and RENAME use the reserved range so that deletes and renames are
observable keystrokes: frames and files are then a pure function of the keys.
"""

import numpy as np

PAD, BOS, EOS, COMMIT = 0, 1, 2, 3
ENTER, TAB, BACKSPACE, DELETE = 4, 5, 6, 7
UP, DOWN, LEFT, RIGHT, HOME, END, PGUP, PGDN = 8, 9, 10, 11, 12, 13, 14, 15
KILL_LINE, GOTO, OPEN = 16, 17, 18
CHAR0 = 19  # id of ' ' (0x20); id = CHAR0 + ord(c) - 0x20 for 0x20 <= ord(c) <= 0x7F
REMOVE_FILE, RENAME = 115, 116
NUM_KEYS = 128

NAMES = {
  PAD: "<pad>",
  BOS: "<bos>",
  EOS: "<eos>",
  COMMIT: "<commit>",
  ENTER: "ENTER",
  TAB: "TAB",
  BACKSPACE: "BACKSPACE",
  DELETE: "DELETE",
  UP: "UP",
  DOWN: "DOWN",
  LEFT: "LEFT",
  RIGHT: "RIGHT",
  HOME: "HOME",
  END: "END",
  PGUP: "PGUP",
  PGDN: "PGDN",
  KILL_LINE: "KILL_LINE",
  GOTO: "GOTO",
  OPEN: "OPEN",
  REMOVE_FILE: "REMOVE_FILE",
  RENAME: "RENAME",
}

# Terminal bytes sent for each key (fbamtrain-compatible where fbamtrain has one).
# Markers and editor commands without a terminal convention get unused control bytes;
# the placeholder character 0x7F is sent as 0x80 because 0x7F is BACKSPACE.
_BYTES = {
  PAD: b"\x00",
  BOS: b"\x02",
  EOS: b"\x03",
  COMMIT: b"\x1d",
  ENTER: b"\r",
  TAB: b"\t",
  BACKSPACE: b"\x7f",
  DELETE: b"\x1b[3~",
  UP: b"\x1b[A",
  DOWN: b"\x1b[B",
  RIGHT: b"\x1b[C",
  LEFT: b"\x1b[D",
  HOME: b"\x1b[H",
  END: b"\x1b[F",
  PGUP: b"\x1b[5~",
  PGDN: b"\x1b[6~",
  KILL_LINE: b"\x0b",
  GOTO: b"\x1f",
  OPEN: b"\x0f",
  REMOVE_FILE: b"\x18",
  RENAME: b"\x12",
}


def char_key(c: str) -> int:
  """Key id typing character `c` (0x20-0x7F)."""
  o = ord(c)
  if not 0x20 <= o <= 0x7F:
    raise ValueError(f"character {c!r} has no key; normalize text first")
  return CHAR0 + o - 0x20


def key_char(k: int) -> str | None:
  """Character typed by key `k`, or None for a non-character key."""
  return chr(k - CHAR0 + 0x20) if CHAR0 <= k < CHAR0 + 96 else None


def key_bytes(k: int) -> bytes:
  """Terminal bytes of key `k` (the unit the FBAM_TOK tokenizer works on)."""
  c = key_char(k)
  if c is not None:
    return b"\x80" if c == "\x7f" else c.encode("ascii")
  if k not in _BYTES:
    raise ValueError(f"key id {k} is reserved")
  return _BYTES[k]


def key_name(k: int) -> str:
  c = key_char(k)
  return repr(c) if c is not None else NAMES.get(k, f"<reserved {k}>")


# Byte string of every defined key, indexed by key id (None for reserved ids).
KEY_BYTES = [
  key_bytes(k) if (k in _BYTES or key_char(k) is not None) else None for k in range(NUM_KEYS)
]
BYTES_TO_KEY = {b: k for k, b in enumerate(KEY_BYTES) if b is not None}


def type_text(s: str) -> list[int]:
  """Keys typing normalized text `s` ('\\n' -> ENTER, '\\t' -> TAB)."""
  return [ENTER if c == "\n" else TAB if c == "\t" else CHAR0 + ord(c) - 0x20 for c in s]


def as_keys(a) -> np.ndarray:
  return np.asarray(a, dtype=np.uint8)
