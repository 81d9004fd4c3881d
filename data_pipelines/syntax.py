"""Per-line syntax colouring of C-like code and the colour palette.

Each cell carries a style id < 32; style s | CURSOR is s with foreground and
background swapped (the cursor cell). Colouring is per line: `//` and `#`-lines,
single-line `/* */` comments, strings, numbers and a keyword set shared by C,
C++, Rust, Go, Zig and Python; block comments spanning lines are not tracked.
"""

import re

import numpy as np

PAD, TEXT, KEYWORD, STRING, COMMENT, NUMBER, PREPROC, GUTTER, STATUS, PROMPT = range(10)
CURSOR = 16
NUM_STYLES = 32

_RGB = {  # style: (foreground, background)
  PAD: ((0, 0, 0), (0, 0, 0)),
  TEXT: ((220, 220, 220), (30, 30, 30)),
  KEYWORD: ((86, 156, 214), (30, 30, 30)),
  STRING: ((206, 145, 120), (30, 30, 30)),
  COMMENT: ((106, 153, 85), (30, 30, 30)),
  NUMBER: ((181, 206, 168), (30, 30, 30)),
  PREPROC: ((197, 134, 192), (30, 30, 30)),
  GUTTER: ((133, 133, 133), (45, 45, 45)),
  STATUS: ((0, 0, 0), (200, 200, 200)),
  PROMPT: ((0, 0, 0), (230, 200, 90)),
}


def _palette() -> np.ndarray:
  pal = np.zeros((NUM_STYLES, 6), np.uint8)
  for s, (fg, bg) in _RGB.items():
    pal[s] = fg + bg
    pal[s | CURSOR] = bg + fg
  return pal


PALETTE = _palette()  # (32, 6): fg RGB, bg RGB per style id

KEYWORDS = frozenset(
  """
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while bool true false class namespace template typename public
private protected virtual new delete this using nullptr fn let mut pub impl trait match mod
use crate self Self loop where async await func package import type var range go defer chan
map interface select def elif except finally from in is lambda not or and pass raise try
with yield None True False comptime try catch errdefer orelse
""".split()
)

_TOKEN = re.compile(
  r"(?P<c>//.*|/\*.*?(?:\*/|$))"
  r"|(?P<s>\"(?:\\.|[^\"\\])*\"?|'(?:\\.|[^'\\])*'?)"
  r"|(?P<n>\b\d[\w.]*)"
  r"|(?P<w>[A-Za-z_]\w*)"
)
_PREPROC = re.compile(r"[ \t]*#")
_STYLE_OF = {"c": COMMENT, "s": STRING, "n": NUMBER}


def highlight(line: str) -> bytes:
  """Style id per character of a tab-expanded line."""
  n = len(line)
  if _PREPROC.match(line):
    return bytes([PREPROC]) * n
  st = bytearray([TEXT]) * n
  for m in _TOKEN.finditer(line):
    kind = m.lastgroup
    if kind == "w":
      if m.group() not in KEYWORDS:
        continue
      style = KEYWORD
    else:
      style = _STYLE_OF[kind]
    a, b = m.span()
    st[a:b] = bytes([style]) * (b - a)
  return bytes(st)
