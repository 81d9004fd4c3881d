"""Key vocabulary of the editor (docs/DATA_PIPELINE.md §3) and the bytes a terminal sends for
each key (docs/FIDELITY.md).

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

Action bytes (encoding ACTION_ENCODING): every key id has one fixed byte string, what an
xterm-compatible terminal (UTF-8, normal cursor-key mode) sends for the key: printable
characters as themselves, ENTER CR, TAB HT, BACKSPACE DEL, the CSI sequences of the arrows,
HOME/END, DELETE and PGUP/PGDN, the C0 controls of nano's Ctrl keys for KILL_LINE (^K),
GOTO (^_) and OPEN (^R), and U+FFFD in UTF-8 for the placeholder character. Actions that are
no key (PAD, BOS, EOS, COMMIT, REMOVE_FILE, RENAME) are the private sequences
ESC [ = <key id> ~, which no terminal sends. No byte string is a prefix of another, so a
concatenation of keys splits back into its keys in one way only. The dataset stores key ids;
the bytes are derived with this table, whose version every dataset records.
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

# The version of the key id -> bytes table below. A dataset records it (segments.json); one
# recorded otherwise, or not at all (built before it existed), is refused: rebuild.
ACTION_ENCODING = "xterm-v1"

# Actions that are no key of a terminal: private CSI sequences ESC [ = <id> ~ (a private
# parameter byte '=' that no terminal's keyboard, mouse, focus, paste or report sequence uses).
CONTROL = (PAD, BOS, EOS, COMMIT, REMOVE_FILE, RENAME)
CONTROL_PREFIX = b"\x1b[="

_BYTES = {
  ENTER: b"\r",  # CR, as a terminal sends Enter (not LF)
  TAB: b"\t",
  BACKSPACE: b"\x7f",  # DEL: xterm's default backarrowKey
  DELETE: b"\x1b[3~",
  UP: b"\x1b[A",  # arrows, HOME and END in normal cursor-key mode (DECCKM reset)
  DOWN: b"\x1b[B",
  RIGHT: b"\x1b[C",
  LEFT: b"\x1b[D",
  HOME: b"\x1b[H",
  END: b"\x1b[F",
  PGUP: b"\x1b[5~",
  PGDN: b"\x1b[6~",
  KILL_LINE: b"\x0b",  # ^K: nano's cut line
  GOTO: b"\x1f",  # ^_: nano's go to line
  OPEN: b"\x12",  # ^R: nano's read file (into a new buffer)
  **{k: CONTROL_PREFIX + b"%d~" % k for k in CONTROL},
}
PLACEHOLDER_BYTES = "\ufffd".encode()  # the character 0x7F stands for: U+FFFD, as UTF-8

# The table before ACTION_ENCODING (datasets without one): the keys whose bytes differed.
LEGACY_BYTES = {
  PAD: b"\x00",
  BOS: b"\x02",
  EOS: b"\x03",
  COMMIT: b"\x1d",
  OPEN: b"\x0f",
  REMOVE_FILE: b"\x18",
  RENAME: b"\x12",
  CHAR0 + 0x7F - 0x20: b"\x80",
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
    return PLACEHOLDER_BYTES if c == "\x7f" else c.encode("ascii")
  if k not in _BYTES:
    raise ValueError(f"key id {k} is reserved")
  return _BYTES[k]


def key_name(k: int) -> str:
  c = key_char(k)
  return repr(c) if c is not None else NAMES.get(k, f"<reserved {k}>")


# Byte string of every defined key, indexed by key id (None for reserved ids and past NUM_KEYS:
# 256 entries, so that any uint8 indexes it).
KEY_BYTES = [key_bytes(k) if (k in _BYTES or key_char(k) is not None) else None for k in range(256)]
BYTES_TO_KEY = {b: k for k, b in enumerate(KEY_BYTES) if b is not None}


def type_text(s: str) -> list[int]:
  """Keys typing normalized text `s` ('\\n' -> ENTER, '\\t' -> TAB)."""
  return [ENTER if c == "\n" else TAB if c == "\t" else CHAR0 + ord(c) - 0x20 for c in s]


def as_keys(a) -> np.ndarray:
  return np.asarray(a, dtype=np.uint8)
