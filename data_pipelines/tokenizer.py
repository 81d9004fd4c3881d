"""Action tokenizer: multi-key tokens, the `# FBAM_TOK v1.0` format, greedy matching.

A token is a byte string (keys.key_bytes concatenated); the file format is the
author's: the header line `# FBAM_TOK v1.0`, then one JSON string per line whose
characters U+0000-U+00FF are the bytes. Ids follow a stable sort by length,
longest first (id 0 is the longest). The base vocabulary is the 256 single bytes
plus every multi-byte key (escape sequences); `learn` adds the most frequent
candidates of a key corpus: runs of one navigation/deletion key, whitespace runs
(also after ENTER), and typed identifiers, keywords and numbers.

Matching is greedy longest match at frame boundaries: one key is one frame, so
a token is matched over whole keys (key byte strings are prefix-free, hence the
trie is over key ids). `encode(keys, pos)` -> (token id, number of keys).

Decoding is the inverse: `token_keys(id)` splits a token's bytes into its keys
(unique, as key byte strings are prefix-free). Base single bytes that are no key
(e.g. 0x01) are in the vocabulary but never a target; decoding them raises.
"""

import collections
import json
import re

import numpy as np

from data_pipelines import keys as K

HEADER = "# FBAM_TOK v1.0"
_RUN_KEYS = (K.UP, K.DOWN, K.LEFT, K.RIGHT, K.DELETE, K.BACKSPACE, K.KILL_LINE, K.PGUP, K.PGDN)
_WORD = re.compile(rb"[A-Za-z_0-9]{2,24}|[ \t]{2,16}|\r[ \t]{1,16}")


class TokenizerError(ValueError):
  pass


def base_vocab() -> list[bytes]:
  return [bytes([i]) for i in range(256)] + sorted(b for b in K.KEY_BYTES if b and len(b) > 1)


class Tokenizer:
  def __init__(self, tokens: list[bytes]):
    if len(set(tokens)) != len(tokens):
      raise TokenizerError("duplicate tokens")
    self.tokens = sorted(tokens, key=len, reverse=True)  # stable: id 0 is the longest
    self.ids = {t: i for i, t in enumerate(self.tokens)}
    self._trie: dict = {}
    self.max_keys = 1
    for t, i in self.ids.items():
      seq = _split_keys(t)
      if seq is None:
        continue  # can never end at a frame boundary: unreachable
      node = self._trie
      for k in seq:
        node = node.setdefault(k, {})
      node[None] = i
      self.max_keys = max(self.max_keys, len(seq))

  def __len__(self) -> int:
    return len(self.tokens)

  def encode(self, keys, pos: int, end: int | None = None) -> tuple[int, int]:
    """Longest token starting at keys[pos] (not past `end`): (id, keys consumed)."""
    end = len(keys) if end is None else end
    node, best = self._trie, None
    for i in range(pos, min(end, pos + self.max_keys)):
      node = node.get(int(keys[i]))
      if node is None:
        break
      if None in node:
        best = (node[None], i + 1 - pos)
    if best is None:
      raise TokenizerError(f"key {K.key_name(int(keys[pos]))} starts no token")
    return best

  def encode_all(self, keys) -> tuple[list[int], list[int]]:
    """(token ids, start positions) of a whole key sequence."""
    ids, starts, pos = [], [], 0
    while pos < len(keys):
      t, n = self.encode(keys, pos)
      ids.append(t)
      starts.append(pos)
      pos += n
    return ids, starts

  def token_keys(self, i: int) -> list[int]:
    """The key ids of token `i`, in order (TokenizerError if it has none)."""
    if not 0 <= i < len(self.tokens):
      raise TokenizerError(
        f"token id {i} is outside this vocabulary of {len(self.tokens)} "
        "tokens: use the tokenizer the ids were made with"
      )
    try:
      return split_keys(self.tokens[i])
    except TokenizerError as e:
      raise TokenizerError(f"token {i} cannot be decoded: {e}") from None

  def decode(self, ids) -> list[int]:
    """Keys of token ids (the inverse of encode_all)."""
    return [k for i in ids for k in self.token_keys(int(i))]

  def save(self, path: str) -> None:
    with open(path, "w") as f:
      f.write(HEADER + "\n")
      for t in self.tokens:
        f.write(json.dumps(t.decode("latin-1")) + "\n")

  @classmethod
  def load(cls, path: str) -> "Tokenizer":
    with open(path) as f:
      lines = f.read().split("\n")
    if lines[0].strip() != HEADER:
      raise TokenizerError(f"{path}: not a tokenizer file (first line must be {HEADER!r})")
    tokens = []
    for i, s in enumerate(lines[1:], 2):
      if not s.strip():
        continue
      try:
        tokens.append(json.loads(s).encode("latin-1"))
      except (ValueError, AttributeError) as e:
        raise TokenizerError(
          f"{path}:{i}: not a JSON string of bytes ({e}); the file is "
          "truncated or was edited: learn it again"
        ) from None
    return cls(tokens)

  @classmethod
  def learn(cls, key_streams, size: int) -> "Tokenizer":
    """Base vocabulary plus the `size - len(base)` candidates saving the most keys
    (count x (keys - 1)); fewer when the corpus has fewer candidates."""
    base = base_vocab()
    if size < len(base):
      raise TokenizerError(f"vocabulary size {size} is below the base {len(base)}")
    counts = collections.Counter()
    for ks in key_streams:
      ks = np.asarray(ks)
      data = _TYPED[ks].tobytes()
      counts.update(m.group() for m in _WORD.finditer(data))
      _count_runs(ks, counts)
    have = set(base)
    scored = sorted(
      ((c * (len(_split_keys(t)) - 1), t) for t, c in counts.items() if t not in have),
      key=lambda x: (-x[0], x[1]),
    )
    return cls(base + [t for _, t in scored[: size - len(base)]])


def _count_runs(ks: np.ndarray, counts: collections.Counter) -> None:
  if len(ks) == 0:
    return
  edges = np.flatnonzero(np.diff(ks.astype(np.int16))) + 1
  starts = np.concatenate([[0], edges])
  lengths = np.diff(np.concatenate([starts, [len(ks)]]))
  for s, n in zip(starts.tolist(), lengths.tolist()):
    k = int(ks[s])
    if n >= 2 and k in _RUN_KEYS:
      for m in range(2, min(n, 32) + 1):
        counts[K.KEY_BYTES[k] * m] += n // m


# Typed byte of each key for candidate search (0 for keys that type nothing).
_TYPED = np.zeros(K.NUM_KEYS, np.uint8)
for _k in range(K.NUM_KEYS):
  _c = K.key_char(_k)
  if _c is not None and _c != "\x7f":
    _TYPED[_k] = ord(_c)
_TYPED[K.ENTER], _TYPED[K.TAB] = ord("\r"), ord("\t")

_MAX_KEY_BYTES = max(len(b) for b in K.BYTES_TO_KEY)


def _scan_keys(tok: bytes) -> tuple[list[int], int]:
  """(keys, end): the keys of the longest prefix of `tok` that is a key sequence. Key byte
  strings are prefix-free, so at most one key starts at each offset."""
  out, i = [], 0
  while i < len(tok):
    n = next((n for n in range(1, _MAX_KEY_BYTES + 1) if tok[i : i + n] in K.BYTES_TO_KEY), 0)
    if not n:
      break
    out.append(K.BYTES_TO_KEY[tok[i : i + n]])
    i += n
  return out, i


def _split_keys(tok: bytes) -> list[int] | None:
  """The key ids whose bytes concatenate to `tok`, or None."""
  out, end = _scan_keys(tok)
  return out if end == len(tok) else None


def split_keys(tok: bytes) -> list[int]:
  """The key ids whose bytes concatenate to `tok`; TokenizerError if there are none."""
  out, end = _scan_keys(tok)
  if end < len(tok):
    raise TokenizerError(
      f"bytes {tok!r} are not a sequence of editor keys: no key's bytes "
      f"(keys.KEY_BYTES) start at offset {end} ({tok[end : end + 4]!r})"
    )
  return out
