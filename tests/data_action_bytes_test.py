"""Actions as the bytes a terminal sends (docs/FIDELITY.md): the key -> bytes table, the
FBAM_TOK v1.0 tokenizer over those bytes (hand-written and learned vocabularies, raw per-frame
byte streams as the author's recordings give them), and the refusal of data and vocabularies
made with the encoding before it."""

import json
import os
import random
import re
import shutil

import numpy as np
import pytest

from data_pipelines import build, sidecar, sources, synthetic, verify
from data_pipelines import keys as K
from data_pipelines.reader import Split
from data_pipelines.tokenizer import HEADER, Tokenizer, TokenizerError, split_keys

ROWS, COLS, WINDOW = 12, 40, 32
CFG = build.BuildConfig(
  rows=ROWS, cols=COLS, window=WINDOW, max_keys_per_commit=3000, max_segment_steps=300, workers=1
)
ESC = b"\x1b"
DEFINED = [k for k in range(K.NUM_KEYS) if k in K.NAMES or K.key_char(k) is not None]

# What an xterm-compatible terminal sends, beyond our keys: cursor keys in application mode
# (SS3), modified cursor/editing/function keys, F1-F12, Alt+key, Shift+Tab, bracketed paste,
# focus events, mouse reports (X10, SGR), modifyOtherKeys, CSI u (fixterms / kitty), Sun
# function keys, and the reports a terminal answers queries with (cursor position, device
# attributes, mode reports).
TERMINAL = (
  [ESC + b"[" + c for c in (b"A", b"B", b"C", b"D", b"H", b"F", b"E", b"Z", b"I", b"O")]
  + [ESC + b"O" + c for c in (b"A", b"B", b"C", b"D", b"H", b"F", b"P", b"Q", b"R", b"S")]
  + [ESC + b"[1;%d%s" % (m, c) for m in range(2, 9) for c in (b"A", b"B", b"C", b"D", b"H")]
  + [ESC + b"[%d~" % n for n in (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 17, 18, 19, 20)]
  + [ESC + b"[%d;%d~" % (n, m) for n in (2, 3, 5, 6, 15, 24) for m in range(2, 9)]
  + [ESC + b"[200~", ESC + b"[201~", ESC + b"[M !!", ESC + b"[<0;12;5M", ESC + b"[<0;12;5m"]
  + [ESC + b"[27;5;97~", ESC + b"[97;5u", ESC + b"[13u", ESC + b"[224z", ESC + b"[12;40R"]
  + [ESC + b"[?1;2c", ESC + b"[>0;95;0c", ESC + b"[?2004;1$y", ESC + b"a", ESC + b"\x7f"]
)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  root = tmp_path_factory.mktemp("bytes")
  repo = synthetic.make_repo(str(root / "repo"), n_commits=14, seed=4)
  out = str(root / "ds")
  build.build([sources.resolve(repo.path)], out, CFG)
  return out


def streams(ds):
  s = Split(ds)
  return [s.segment_arrays(i)[0] for i in range(len(s.segments))]


def author_tokens(path):
  """The token list of a FBAM_TOK v1.0 file, read from the format's description alone: the
  exact header line, then one JSON string per non-empty line whose characters are the bytes;
  ids after a stable sort by length, longest first."""
  with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
  assert lines[0] == "# FBAM_TOK v1.0"
  tokens = [json.loads(s) for s in lines[1:] if s]
  return [t.encode("latin-1") for t in sorted(tokens, key=len, reverse=True)]


def author_match(tokens, frames):
  """(ids, starts) of the author's rule over per-frame input bytes, written from its
  description: drop a frame's trailing NUL, feed whole frames to the token trie while some
  token continues the bytes, and take the last token that ended at a frame boundary. (His loop
  drops a token still open when the stream ends; this one keeps it, like ours.)"""
  ids = {t: i for i, t in enumerate(tokens)}
  prefixes = {t[:j] for t in tokens for j in range(len(t) + 1)}
  frames = [f[:-1] if f.endswith(b"\0") else f for f in frames]
  out_ids, starts, pos = [], [], 0
  while pos < len(frames):
    acc, best, i = b"", None, pos
    while i < len(frames):
      acc += frames[i]
      if acc not in prefixes:
        break
      i += 1
      if acc in ids:
        best = (ids[acc], i)
    assert best is not None, f"frame {pos} starts no token"
    out_ids.append(best[0])
    starts.append(pos)
    pos = best[1]
  return out_ids, starts


# -- the byte table ---------------------------------------------------------------------------


def test_every_key_has_its_terminal_bytes():
  assert K.ACTION_ENCODING == "xterm-v1"
  for k in range(256):
    assert (K.KEY_BYTES[k] is not None) == (k in DEFINED), K.key_name(k)
  for c in range(0x20, 0x7F):
    assert K.KEY_BYTES[K.char_key(chr(c))] == bytes([c])
  assert K.KEY_BYTES[K.char_key("\x7f")] == "\ufffd".encode()
  want = {
    K.ENTER: b"\r",
    K.TAB: b"\t",
    K.BACKSPACE: b"\x7f",
    K.UP: ESC + b"[A",
    K.DOWN: ESC + b"[B",
    K.RIGHT: ESC + b"[C",
    K.LEFT: ESC + b"[D",
    K.HOME: ESC + b"[H",
    K.END: ESC + b"[F",
    K.DELETE: ESC + b"[3~",
    K.PGUP: ESC + b"[5~",
    K.PGDN: ESC + b"[6~",
    K.KILL_LINE: b"\x0b",
    K.GOTO: b"\x1f",
    K.OPEN: b"\x12",
  }
  for k, b in want.items():
    assert K.KEY_BYTES[k] == b, K.key_name(k)
  for k in K.CONTROL:
    assert K.KEY_BYTES[k] == ESC + b"[=%d~" % k
  assert sorted(K.CONTROL) == sorted(
    set(DEFINED) - set(want) - {K.char_key(chr(c)) for c in range(32, 128)}
  )


def test_prefix_free_so_keys_split_back():
  """No key's bytes are a proper prefix of another's: greedy matching at key boundaries and
  the split of a token into keys are unambiguous."""
  bs = [K.KEY_BYTES[k] for k in DEFINED]
  assert len(set(bs)) == len(bs)
  for a in bs:
    for b in bs:
      assert a == b or not b.startswith(a), (a, b)
  rng = random.Random(0)
  for _ in range(200):
    ks = [rng.choice(DEFINED) for _ in range(rng.randint(1, 12))]
    assert split_keys(b"".join(K.KEY_BYTES[k] for k in ks)) == ks


def test_control_actions_collide_with_no_terminal_sequence():
  ours = {K.KEY_BYTES[k] for k in DEFINED if k not in K.CONTROL and K.KEY_BYTES[k][:1] == ESC}
  assert ours <= set(TERMINAL)  # our escape keys are what xterm sends
  for c in (K.KEY_BYTES[k] for k in K.CONTROL):
    assert c.startswith(K.CONTROL_PREFIX)
    for t in TERMINAL + [K.KEY_BYTES[k] for k in DEFINED if k not in K.CONTROL]:
      assert not t.startswith(c) and not c.startswith(t), (c, t)
      assert not t.startswith(K.CONTROL_PREFIX)


# -- a hand-written FBAM_TOK v1.0 file ---------------------------------------------------------

# Multi-byte tokens as a person writes them in the format: JSON strings, ESC as \u001b, in no
# particular order (the loader sorts). Equal lengths keep the file's order, so "\u001b[A",
# listed first, gets a smaller id than "\u001b[B". The lone ESC and "\u001b[" end inside a key's
# bytes: they never match our data. One line is empty (the author's C++ loader skips it).
HAND = r"""# FBAM_TOK v1.0
"\u001b[3~"
"\u001b[3~\u001b[3~"
"\u001b[A"
"\u001b[B"
"\u001b[B\u001b[B\u001b[B"
"\u001b[C\u001b[C"

"\u001b"
"\u001b["
"\r\t"
"\t\t"
"int"
"return"
"\u001b[=3~\u0012"
"""


def hand_file(tmp_path) -> str:
  """HAND plus a line for every other key's bytes (without them some keys have no token)."""
  have = {json.loads(s).encode("latin-1") for s in HAND.split("\n")[1:] if s}
  rest = [b for b in (K.KEY_BYTES[k] for k in DEFINED) if b not in have]
  path = str(tmp_path / "hand.txt")
  with open(path, "w") as f:
    f.write(HAND + "".join(json.dumps(b.decode("latin-1")) + "\n" for b in rest))
  return path


def test_hand_written_vocabulary_tokenizes_our_data(ds, tmp_path):
  path = hand_file(tmp_path)
  tok = Tokenizer.load(path)
  assert tok.tokens == author_tokens(path)
  assert tok.tokens[0] == (ESC + b"[B") * 3 and tok.ids[ESC + b"[A"] < tok.ids[ESC + b"[B"]
  assert tok.missing_keys() == []
  used = set()
  for keys in streams(ds):
    ids, starts = tok.encode_all(keys)
    assert tok.decode(ids) == keys.tolist()
    frames = [K.KEY_BYTES[k] for k in keys.tolist()]
    assert tok.encode_frames(frames) == (ids, starts) == author_match(tok.tokens, frames)
    used |= {tok.tokens[i] for i in ids}
  for t in (ESC + b"[3~", ESC + b"[A", b"\r\t", b"int", ESC + b"[=1~", ESC + b"[=3~"):
    assert t in used, t
  assert ESC not in used and ESC + b"[" not in used
  assert any(len(split_keys(t)) > 1 for t in used)  # multi-key tokens matched
  # In raw frames a lone ESC (the Escape key) is a frame of its own and matches the ESC token.
  assert tok.encode_frames([b"\x1b\0", b"i\0", b"n\0", b"t\0"]) == (
    [tok.ids[ESC], tok.ids[b"int"]],
    [0, 1],
  )


def test_uncovered_keys_named(tmp_path):
  arrows_only = [bytes([i]) for i in range(256)] + [ESC + b"[" + c for c in (b"A", b"B")]
  tok = Tokenizer(arrows_only)
  with pytest.raises(TokenizerError, match=re.escape(r"key END (bytes b'\x1b[F') at position 1")):
    tok.encode_all([K.UP, K.END])
  with pytest.raises(TokenizerError, match=r"with_keys\(\) adds the keys it lacks"):
    tok.encode([K.UP, K.COMMIT], 1)
  with pytest.raises(TokenizerError, match=re.escape(r"frame 1 (bytes b'\x1b[3~'")):
    tok.encode_frames([b"a", b"\x1b[3~\0", b"b"])
  assert K.END in tok.missing_keys() and K.UP not in tok.missing_keys()
  full = tok.with_keys()
  assert full.missing_keys() == [] and full.decode(full.encode_all([K.UP, K.END])[0]) == [
    K.UP,
    K.END,
  ]


# -- a learned vocabulary against raw per-frame bytes ------------------------------------------


def test_learned_vocabulary_reads_as_the_author_format_and_tokenizes_raw_frames(ds, tmp_path):
  data = streams(ds)
  learned = Tokenizer.learn(data, 400)
  path = str(tmp_path / "learned.txt")
  learned.save(path)
  raw = open(path, "rb").read()
  lines = raw.decode("ascii").split("\n")
  assert lines[0] == HEADER and lines[-1] == "" and "" not in lines[1:-1]
  assert all(s == json.dumps(json.loads(s)) for s in lines[1:-1])  # as the author's file is
  assert author_tokens(path) == Tokenizer.load(path).tokens == learned.tokens
  tok = Tokenizer.load(path)
  assert any(ESC in t and len(t) > 4 for t in tok.tokens)  # e.g. runs of arrows
  rng = random.Random(1)
  for keys in data:
    keys = keys.tolist()
    # One key per frame, each frame's input NUL-terminated as in the author's recordings.
    frames = [K.KEY_BYTES[k] + b"\0" for k in keys]
    assert tok.encode_frames(frames) == tok.encode_all(keys)
    # Frames as a recording gives them: a whole word or run in one frame (typed or repeated
    # faster than the frame rate), frames without input, and single keys.
    grouped, i = [], 0
    while i < len(keys):
      n = tok.encode(keys, i)[1] if rng.random() < 0.3 else 1
      grouped += [b"\0"] * (rng.random() < 0.1)
      grouped.append(b"".join(K.KEY_BYTES[k] for k in keys[i : i + n]) + b"\0")
      i += n
    ids, starts = tok.encode_frames(grouped)
    assert (ids, starts) == author_match(tok.tokens, grouped)
    assert b"".join(tok.tokens[i] for i in ids) == b"".join(f[:-1] for f in grouped)
    assert len(ids) <= len(tok.encode_all(keys)[0])


# -- datasets and vocabularies of the encoding before -----------------------------------------


@pytest.fixture()
def copy_of(ds, tmp_path):
  d = str(tmp_path / "copy")
  shutil.copytree(ds, d)
  return d


def _edit(d, fn):
  path = os.path.join(d, "segments.json")
  with open(path) as f:
    side = json.load(f)
  fn(side)
  with open(path, "w") as f:
    json.dump(side, f)


@pytest.mark.parametrize(
  "edit, made",
  [
    (lambda s: s.pop("action_encoding"), "the key bytes used before the encoding was recorded"),
    (lambda s: s.update(action_encoding="xterm-v0"), "'xterm-v0'"),
  ],
)
def test_old_encoding_dataset_refused(copy_of, edit, made):
  assert json.load(open(os.path.join(copy_of, "segments.json")))["action_encoding"] == "xterm-v1"
  _edit(copy_of, edit)
  msg = "rebuild: action encoding changed: its actions were made with " + re.escape(made)
  for read in (Split, verify.verify_dir, sidecar.load):
    with pytest.raises(sidecar.EncodingChanged, match=msg + ".*--overwrite"):
      read(copy_of)


def test_old_encoding_dataset_named_and_rebuilt(copy_of, ds):
  _edit(copy_of, lambda s: s.pop("action_encoding"))
  src = [sources.resolve(json.load(open(os.path.join(ds, "segments.json")))["repos"][0]["path"])]
  with pytest.raises(build.BuildError, match="older action encoding"):
    build.build(src, copy_of, CFG)
  build.build(src, copy_of, CFG, overwrite=True)
  assert sidecar.load(copy_of)["action_encoding"] == K.ACTION_ENCODING


def test_old_encoding_vocabulary_refused(tmp_path):
  """A vocabulary learned with the table before: its base (the 256 bytes and that table's
  multi-byte keys) and candidates, none of the sequences the encoding added."""
  old_base = [bytes([i]) for i in range(256)] + sorted(
    b for k, b in enumerate(K.KEY_BYTES) if b and len(b) > 1 and k not in K.LEGACY_BYTES
  )
  old = Tokenizer(old_base + [b"return", ESC + b"[B" * 4, b"\r  ", b"\x0b\x0b"])
  path = str(tmp_path / "tokenizer_300.txt")
  old.save(path)
  with pytest.raises(
    TokenizerError,
    match=re.escape(path) + ": rebuild: action encoding changed.*python -m data_pipelines.vocab",
  ):
    Tokenizer.load(path)
  # The author's vocabulary has neither table's navigation keys: it loads as it is.
  Tokenizer(old_base[:256] + [ESC + b"[A", b"int"]).save(path)
  assert len(Tokenizer.load(path)) == 258


def test_loader_is_as_strict_as_the_authors(tmp_path):
  path = tmp_path / "t.txt"
  path.write_bytes(b'# FBAM_TOK v1.0\r\n"a"\r\n')
  with pytest.raises(TokenizerError, match="not a tokenizer file"):
    Tokenizer.load(str(path))
  path.write_text('# FBAM_TOK v1.0\n"a"\n"\\u0100"\n')
  with pytest.raises(TokenizerError, match=r"t.txt:3: has a character above U\+00FF"):
    Tokenizer.load(str(path))
  path.write_text('# FBAM_TOK v1.0\n"ab"\n\n"a"\n"b"\n')
  assert Tokenizer.load(str(path)).tokens == [b"ab", b"a", b"b"]


def test_same_input_builds_byte_identical(ds, tmp_path):
  src = [sources.resolve(json.load(open(os.path.join(ds, "segments.json")))["repos"][0]["path"])]
  again = str(tmp_path / "again")
  build.build(src, again, CFG)
  files = lambda d: sorted(
    os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs
  )
  assert files(ds) == files(again)
  for rel in files(ds):
    assert open(os.path.join(ds, rel), "rb").read() == open(os.path.join(again, rel), "rb").read()
  keys = np.concatenate(streams(ds))
  for k in (K.BOS, K.COMMIT, K.DELETE, K.REMOVE_FILE, K.RENAME, K.char_key("\x7f")):
    assert (keys == k).any(), K.key_name(k)  # the data exercises the non-character keys
