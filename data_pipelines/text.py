"""Normalisation of file contents and paths to the editor's character set.

The editor holds text over {0x20-0x7E, '\\t', '\\n', 0x7F}: bytes are decoded as
UTF-8 with replacement, CRLF and lone CR become LF, and every other character
(non-ASCII, control characters, U+FFFD) becomes the placeholder 0x7F.
"""

import re

_CRLF = re.compile(r"\r\n?")
_OUT_OF_SET = re.compile(r"[^\x20-\x7e\t\n]")
_PATH_OUT = re.compile(r"[^\x20-\x7e]")


def normalize(data: bytes | str) -> str:
  """File contents as the editor shows them (see module docstring)."""
  s = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
  return _OUT_OF_SET.sub("\x7f", _CRLF.sub("\n", s))


def normalize_path(path: bytes | str) -> str:
  """Path as typed into the OPEN prompt: one line, printable ASCII or 0x7F."""
  s = path.decode("utf-8", errors="replace") if isinstance(path, bytes) else path
  return _PATH_OUT.sub("\x7f", s)


def split_lines(text: str) -> list[str]:
  """Editor buffer lines of `text`: 'a\\nb\\n' -> ['a', 'b', '']; '' -> ['']."""
  return text.split("\n")


def join_lines(lines: list[str]) -> str:
  return "\n".join(lines)
