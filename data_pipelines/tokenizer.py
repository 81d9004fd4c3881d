"""Action tokenizer over terminal bytes: multi-key tokens, the `# FBAM_TOK v1.0` format, greedy
matching at frame boundaries (docs/FIDELITY.md).

A token is a byte string. An action is one frame's input bytes: in our data one key per frame,
its bytes keys.KEY_BYTES[key] (the table of keys.ACTION_ENCODING); in the author's recordings
whatever the terminal sent during the frame. Matching is the author's: greedy longest match
over the concatenated bytes of consecutive frames, where a token may end only at a frame
boundary (a token ending inside a frame's bytes never matches). `encode(keys, pos)` and
`encode_all(keys)` match key ids through their bytes; `encode_frames(frames)` matches raw
per-frame byte strings (a trailing NUL dropped from each, as the author's loop does, so a frame
of no bytes joins the token around it).

File format (the author's loaders, fbamtrain `src/tokenizer.cpp` and `toyimpl/src/tokenizer.py`):
the line `# FBAM_TOK v1.0`, then one JSON string per line whose characters U+0000-U+00FF are the
bytes (written as Python's `json.dumps`, ASCII with escapes, as his file is); empty lines are
skipped. Ids follow a stable sort by length, longest first (id 0 is the longest), whatever the
order in the file. The base vocabulary is the 256 single bytes plus every multi-byte key;
`learn` adds the candidates of a key corpus that save the most steps: runs of one
navigation/deletion key, whitespace runs (also after ENTER), typed identifiers, keywords and
numbers, all sequences of whole keys.

Decoding is the inverse: `token_keys(id)` splits a token's bytes into its keys (unique, as key
byte strings are prefix-free). Tokens that are no key sequence (e.g. the base byte 0x01, or
the author's lone ESC) are in the vocabulary but never match our data; decoding them raises.

A file learned before keys.ACTION_ENCODING (its base: the 256 bytes and the old multi-byte keys,
none of the sequences the encoding added) is refused on load: "rebuild: action encoding
changed". A vocabulary learned elsewhere (the author's) loads as it is; `missing_keys` lists
the keys it has no token for and `with_keys` adds them.
"""

import collections
import json
import re

import numpy as np

from data_pipelines import keys as K

HEADER = "# FBAM_TOK v1.0"
_RUN_KEYS = (K.UP, K.DOWN, K.LEFT, K.RIGHT, K.DELETE, K.BACKSPACE, K.KILL_LINE, K.PGUP, K.PGDN)
_WORD = re.compile(rb"[A-Za-z_0-9]{2,24}|[ \t]{2,16}|\r[ \t]{1,16}")
_END = -1  # the trie node entry holding the id of the token that ends there
_RELEARN = "python -m data_pipelines.vocab DATASET_DIR --size N --out FILE"


class TokenizerError(ValueError):
  pass


def base_vocab() -> list[bytes]:
  return [bytes([i]) for i in range(256)] + sorted(b for b in K.KEY_BYTES if b and len(b) > 1)


# The multi-byte keys every vocabulary learned before keys.ACTION_ENCODING held, and those the
# encoding added (which such a vocabulary cannot hold).
_LEGACY_MULTI = frozenset(
  b for k, b in enumerate(K.KEY_BYTES) if b and len(b) > 1 and k not in K.LEGACY_BYTES
) | frozenset(b for b in K.LEGACY_BYTES.values() if len(b) > 1)
_ADDED_MULTI = frozenset(K.KEY_BYTES[k] for k in K.LEGACY_BYTES if len(K.KEY_BYTES[k]) > 1)


def legacy_encoding(tokens) -> bool:
  """Whether `tokens` look learned with the table before keys.ACTION_ENCODING: the 256 bytes
  and every multi-byte key of that table, but none of the sequences the encoding added."""
  have = set(tokens)
  singles = all(bytes([i]) in have for i in range(256))
  return singles and _LEGACY_MULTI <= have and not (_ADDED_MULTI & have)


class Tokenizer:
  def __init__(self, tokens: list[bytes]):
    if len(set(tokens)) != len(tokens):
      dup = sorted(t for t, n in collections.Counter(tokens).items() if n > 1)
      raise TokenizerError(f"duplicate tokens: {dup[:5]}")
    if b"" in tokens:
      raise TokenizerError("the empty token would match nothing, forever: remove it")
    self.tokens = sorted(tokens, key=len, reverse=True)  # stable: id 0 is the longest
    self.ids = {t: i for i, t in enumerate(self.tokens)}
    self._root: dict = {}  # byte -> child node; _END -> token id
    for t, i in self.ids.items():
      node = self._root
      for b in t:
        node = node.setdefault(b, {})
      node[_END] = i
    # The most keys a token can span (tokens that are no key sequence never match keys).
    self.max_keys = max([1] + [len(s) for t in self.tokens if (s := _split_keys(t))])

  def __len__(self) -> int:
    return len(self.tokens)

  def _longest(self, frames) -> tuple[int, int] | None:
    """(id, frames consumed) of the longest token equal to the bytes of the first frames of the
    iterable `frames` (byte strings; None for a key id without bytes), or None."""
    node, best, n = self._root, None, 0
    for f in frames:
      if f is None:
        break
      for b in f:
        node = node.get(b)
        if node is None:
          return best
      n += 1
      i = node.get(_END)
      if i is not None:
        best = (i, n)
    return best

  def encode(self, keys, pos: int, end: int | None = None) -> tuple[int, int]:
    """Longest token starting at keys[pos] (not past `end`): (id, keys consumed)."""
    end = len(keys) if end is None else end
    best = self._longest(K.KEY_BYTES[keys[i]] for i in range(pos, end))
    if best is None:
      raise self._no_token(keys, pos)
    return best

  def encode_all(self, keys) -> tuple[list[int], list[int]]:
    """(token ids, start positions) of a whole key sequence."""
    frames = [K.KEY_BYTES[k] for k in np.asarray(keys).tolist()]
    return self._encode_frames(frames, lambda pos: self._no_token(keys, pos))

  def encode_frames(self, frames) -> tuple[list[int], list[int]]:
    """(token ids, start frame indices) of raw per-frame input bytes, as the author's
    recordings hold them (a trailing NUL of each frame is dropped)."""
    frames = [f[:-1] if f.endswith(b"\0") else f for f in map(bytes, frames)]

    def fail(pos):
      return TokenizerError(
        f"frame {pos} (bytes {frames[pos]!r}, then {b''.join(frames[pos + 1 : pos + 4])!r}) "
        "starts no token: no token is the bytes of the frames from there up to a frame boundary"
      )

    return self._encode_frames(frames, fail)

  def _encode_frames(self, frames: list, fail) -> tuple[list[int], list[int]]:
    """_longest from each token start on (inlined: the reader tokenizes whole segments)."""
    ids, starts, pos, n, root = [], [], 0, len(frames), self._root
    while pos < n:
      node, best, i = root, None, pos
      while i < n and node is not None:
        f = frames[i]
        if f is None:
          break
        for b in f:
          node = node.get(b)
          if node is None:
            break
        else:
          i += 1
          t = node.get(_END)
          if t is not None:
            best = (t, i)
      if best is None:
        raise fail(pos)
      ids.append(best[0])
      starts.append(pos)
      pos = best[1]
    return ids, starts

  def _no_token(self, keys, pos: int) -> TokenizerError:
    k = int(keys[pos])
    if K.KEY_BYTES[k] is None:
      return TokenizerError(f"key id {k} at position {pos} is reserved: no bytes, no token")
    b = K.KEY_BYTES[k]
    lacks = (
      f"; the vocabulary has no token {b!r} for this key (learned on other data? "
      "Tokenizer.with_keys() adds the keys it lacks)"
      if b not in self.ids
      else ""
    )
    return TokenizerError(
      f"key {K.key_name(k)} (bytes {b!r}) at position {pos} starts no token: no token is the "
      f"bytes of the keys from there up to a key boundary{lacks}"
    )

  def missing_keys(self) -> list[int]:
    """Key ids (of keys.KEY_BYTES) that no token equals: sequences holding them may have no
    tokenization."""
    return [k for k, b in enumerate(K.KEY_BYTES) if b is not None and b not in self.ids]

  def with_keys(self) -> "Tokenizer":
    """This vocabulary plus a token for each key it lacks (ids of shorter tokens shift)."""
    return Tokenizer(self.tokens + [K.KEY_BYTES[k] for k in self.missing_keys()])

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
    """The FBAM_TOK v1.0 file, longest token first (the order of the ids)."""
    with open(path, "w", encoding="ascii", newline="\n") as f:
      f.write(HEADER + "\n")
      for t in self.tokens:
        f.write(json.dumps(t.decode("latin-1")) + "\n")

  @classmethod
  def load(cls, path: str) -> "Tokenizer":
    """A FBAM_TOK v1.0 file, ours or the author's, read as his loader reads it."""
    with open(path, "rb") as f:
      data = f.read()
    try:
      lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
      raise TokenizerError(f"{path}: not UTF-8 ({e}): not a tokenizer file") from None
    if lines[0] != HEADER:
      raise TokenizerError(
        f"{path}: not a tokenizer file (first line {lines[0][:40]!r}, must be {HEADER!r})"
      )
    tokens = []
    for i, s in enumerate(lines[1:], 2):
      if not s:
        continue
      try:
        t = json.loads(s)
        tokens.append(t.encode("latin-1"))
      except (ValueError, AttributeError) as e:
        what = (
          "has a character above U+00FF: tokens are byte strings"
          if isinstance(e, UnicodeEncodeError)
          else f"not a JSON string of bytes ({e})"
        )
        raise TokenizerError(
          f"{path}:{i}: {what}; the file is truncated or was edited: learn it again"
        ) from None
    if legacy_encoding(tokens):
      raise TokenizerError(
        f"{path}: rebuild: action encoding changed: this vocabulary was learned with the key "
        f"bytes used before action encoding {K.ACTION_ENCODING!r} (control actions as single "
        f"control bytes; docs/FIDELITY.md). Learn it again: `{_RELEARN}` (a dataset's "
        "tokenizer_<N>.txt: delete it and it is learned again from the train split)"
      )
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


# The byte of each key that types one printable or whitespace byte, for the candidate search
# (0, matched by no candidate pattern, for every other key): candidates are whole-key sequences.
_TYPED = np.zeros(256, np.uint8)
for _k in [K.ENTER, K.TAB] + [K.char_key(chr(c)) for c in range(0x20, 0x7F)]:
  _TYPED[_k] = K.KEY_BYTES[_k][0]

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
