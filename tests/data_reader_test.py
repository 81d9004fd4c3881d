"""Grain lane reader, random windows and the tokenizer (docs/DATA_PIPELINE.md §9, tests 8, 9)."""

import json

import grain
import numpy as np
import pytest

from data_pipelines import build, codec, render, replay, sources, synthetic, tokenizer, vocab
from data_pipelines import keys as K
from data_pipelines import reader as reader_lib
from data_pipelines.reader import LaneBatchIterDataset, LaneReader, Split, random_windows
from data_pipelines.tokenizer import HEADER, Tokenizer, TokenizerError

ROWS, COLS, WINDOW = 12, 40, 32
CFG = build.BuildConfig(
  rows=ROWS, cols=COLS, window=WINDOW, max_keys_per_commit=3000, max_segment_steps=150, workers=1
)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  root = tmp_path_factory.mktemp("reader")
  repo = synthetic.make_repo(str(root / "repo"), n_commits=12, seed=3)
  out = str(root / "ds")
  build.build([sources.resolve(repo.path)], out, CFG)
  return out


@pytest.fixture(scope="module")
def tok(ds):
  split = Split(ds)
  return Tokenizer.learn([split.segment_arrays(i)[0] for i in range(len(split.segments))], 400)


def reader(ds, **kw):
  kw = {"seed": 0, "shard_index": 0, "shard_count": 1, **kw}
  return LaneReader(ds, "train", kw.pop("B", 3), kw.pop("T", 40), **kw)


def segment_frames(split, i):
  s = split.segments[i]
  cells = np.concatenate(
    [split.cells(r) for r in range(s["first_record"], s["first_record"] + s["n_windows"])]
  )
  return cells[: s["n_steps"]]


def _assert_json_restore(base, it, *, skip, n):
  """After `skip` batches, a JSON round trip of the state reproduces the next `n` batches."""
  for _ in range(skip):
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  want = [next(it) for _ in range(n)]
  it2 = iter(base)
  it2.set_state(state)
  assert it2.get_state() == state
  for w in want:
    got = next(it2)
    for k in w:
      assert np.array_equal(w[k], got[k])
  return state


def test_determinism_and_epoch_order(ds):
  a, b, c = reader(ds), reader(ds), reader(ds, seed=1)
  for _ in range(4):
    x, y, z = a.next_batch(), b.next_batch(), c.next_batch()
    for k in x:
      assert np.array_equal(x[k], y[k])
  assert not np.array_equal(x["actions"], z["actions"])
  n = len(a.split.segments)
  assert n >= 8
  q0, q1 = list(reader(ds).queue(0)), list(reader(ds).queue(1))
  assert sorted(q0) == sorted(q1) == list(range(n)) and q0 != q1


def test_shards_disjoint_and_covering(ds):
  rs = [reader(ds, shard_index=i, shard_count=3) for i in range(3)]
  shards = [set(r.shard) for r in rs]
  assert set().union(*shards) == set(range(len(rs[0].split.segments)))
  assert sum(map(len, shards)) == len(set().union(*shards))
  for r, sh in zip(rs, shards):
    for _ in range(3):
      r.next_batch()
      assert {lane.seg for lane in r.lanes} <= sh


def test_lanes_continuous_and_each_segment_once_per_epoch(ds):
  r = reader(ds, B=3, T=37)
  taken = []
  orig = r._next_item
  r._next_item = lambda: taken.append(orig()) or taken[-1]
  split = r.split
  n = len(split.segments)
  batches = [r.next_batch() for _ in range(60)]
  assert sorted(taken[:n]) == list(range(n)) and sorted(taken[n : 2 * n]) == list(range(n))
  assert taken[:n] != taken[n : 2 * n]
  acts = np.concatenate([b["actions"] for b in batches], axis=1)
  reset = np.concatenate([b["reset"] for b in batches], axis=1)
  frames = np.concatenate([b["frames"] for b in batches], axis=1)
  assert np.concatenate([b["valid"] for b in batches], axis=1).all()
  keys = {i: split.segment_arrays(i)[0] for i in range(n)}
  checked = 0
  for lane in range(3):
    starts = np.flatnonzero(reset[lane]).tolist() + [acts.shape[1]]
    assert starts[0] == 0
    for s, e in zip(starts[:-1], starts[1:]):
      chunk = acts[lane, s:e]
      match = [
        i
        for i in range(n)
        if len(keys[i]) >= len(chunk) and np.array_equal(keys[i][: len(chunk)], chunk)
      ]
      assert match and chunk[0] == K.BOS
      if e < acts.shape[1]:  # complete segment
        i = next(i for i in match if len(keys[i]) == len(chunk))
        assert np.array_equal(frames[lane, s:e], codec.to_rgb(segment_frames(split, i)))
        checked += 1
  assert checked >= 6


def test_frames_match_a_fresh_replay(ds):
  split = Split(ds)
  s = split.segments[0]
  assert s["start_commit"] is None
  keys, cursor = split.segment_arrays(0)
  w = replay.replay_frames({}, keys, ROWS, COLS)
  assert np.array_equal(codec.to_rgb(segment_frames(split, 0)), render.to_rgb(w.cp, w.st))
  assert np.array_equal(cursor, w.cursor)


def test_checkpoint_restore(ds, tok):
  for t in (None, tok):
    base = LaneBatchIterDataset(
      ds, "train", 2, 23, seed=5, tokenizer=t, shard_index=0, shard_count=1
    )
    grain.experimental.assert_equal_output_after_checkpoint(
      grain.experimental.LimitIterDataset(base, count=8)
    )
    it = iter(base)
    _assert_json_restore(base, it, skip=7, n=5)


def tokenised(split, tok=None):
  """[(token ids, token key positions, frames (n_steps, ...) RGB)] of every segment."""
  out = []
  for i in range(len(split.segments)):
    keys = split.segment_arrays(i)[0]
    ids, starts = (keys, np.arange(len(keys))) if tok is None else tok.encode_all(keys)
    out.append((np.array(ids, np.int32), np.array(starts), codec.to_rgb(segment_frames(split, i))))
  return out


def expected_pieces(split, segs, n_max):
  """{(segment, k): token key positions of piece k}, from the spec, for every segment."""
  out = {}
  for i, (_, starts, _) in enumerate(segs):
    n = split.segments[i]["n_steps"]
    cut = lambda p: n if p >= n else starts[starts <= p].max()  # start of the token containing p
    for k in range(-(-n // n_max)):
      out[i, k] = starts[(starts >= cut(k * n_max)) & (starts < cut((k + 1) * n_max))].tolist()
  return out


@pytest.mark.parametrize("with_tok", [False, True])
def test_pieces_each_once_per_epoch_and_tile_segments(ds, tok, with_tok, monkeypatch):
  t = tok if with_tok else None
  N = (
    9 if with_tok else 37
  )  # with the tokenizer, tokens of up to 32 keys: boundaries move, some pieces empty
  r = reader(ds, B=3, T=23, tokenizer=t, max_lane_steps=N)
  split = r.split
  segs = tokenised(split, t)
  want = expected_pieces(split, segs, N)
  assert set(r.items) == set(want) and len(r.items) == len(want)
  taken, fills = [], []
  orig_item, orig_fill = r._next_item, reader_lib._Batch.fill
  r._next_item = lambda: taken.append(orig_item()) or taken[-1]

  def fill(self, split_, b, t_, lane, k):
    fills.append(
      (
        len(batches),
        b,
        t_,
        k,
        len(taken) - 1 if lane.j == lane.j0 else None,
        lane.seg,
        lane.starts[lane.j : lane.j + k].tolist(),
      )
    )
    orig_fill(self, split_, b, t_, lane, k)

  monkeypatch.setattr(reader_lib._Batch, "fill", fill)
  batches = []
  while r.epoch < 2:
    batches.append(r.next_batch())
  n = len(want)
  assert sorted(taken[:n]) == sorted(want) and sorted(taken[n : 2 * n]) == sorted(want)
  assert taken[:n] != taken[n : 2 * n]
  # Follow each lane: a piece runs on from batch to batch until the next reset.
  got, current = {}, {}
  for bi, b, t_, k, inst, seg, pos in fills:
    x = batches[bi]
    assert x["reset"][b, t_] == (inst is not None) and not x["reset"][b, t_ + 1 : t_ + k].any()
    if inst is not None:
      current[b] = inst
      got[inst] = []
    got[current[b]] += pos
    ids, starts, frames = segs[seg]
    assert np.array_equal(x["actions"][b, t_ : t_ + k], ids[np.searchsorted(starts, pos)])
    assert np.array_equal(x["frames"][b, t_ : t_ + k], frames[pos])
  assert all(np.concatenate([x["valid"] for x in batches]).ravel())
  # Every epoch-0 piece was walked whole, in order; together they tile each segment once.
  nonempty = [i for i in range(n) if want[taken[i]]]
  assert len(nonempty) < n if with_tok else len(nonempty) == n
  for i in nonempty:
    assert got[i] == want[taken[i]]
  assert all(i not in got for i in range(n) if not want[taken[i]])
  for seg in range(len(split.segments)):
    walked = sorted(p for i in nonempty if taken[i][0] == seg for p in got[i])
    assert walked == segs[seg][1].tolist()


def test_pieces_give_lanes_different_data(ds):
  """One segment in the shard: whole-segment lanes are copies, pieces are not."""
  n_seg = len(Split(ds).segments)
  one = {"B": 4, "T": 16, "shard_index": 0, "shard_count": n_seg}
  same = reader(ds, **one).next_batch()
  assert all(np.array_equal(same["frames"][0], same["frames"][b]) for b in range(4))
  r = reader(ds, **one, max_lane_steps=30)
  assert len(r.shard) == 1 and len(r.items) >= 4
  for _ in range(3):
    x = r.next_batch()
    for a in range(4):
      for b in range(a):
        assert not np.array_equal(x["actions"][a], x["actions"][b])


def test_pieces_determinism_and_default_unchanged(ds, tok):
  for t in (None, tok):
    a, b = reader(ds, tokenizer=t, max_lane_steps=40), reader(ds, tokenizer=t, max_lane_steps=40)
    c = reader(ds, tokenizer=t, max_lane_steps=40, seed=1)
    for _ in range(5):
      x, y, z = a.next_batch(), b.next_batch(), c.next_batch()
      for k in x:
        assert np.array_equal(x[k], y[k])
    assert not np.array_equal(x["actions"], z["actions"])
    # A piece longer than any segment is the whole segment: same batches as None.
    d, e = reader(ds, tokenizer=t, max_lane_steps=10**6), reader(ds, tokenizer=t)
    assert d.items == [(i, 0) for i in e.items]
    for _ in range(5):
      x, y = d.next_batch(), e.next_batch()
      for k in x:
        assert np.array_equal(x[k], y[k])
    assert "max_lane_steps" not in e.get_state() and all(
      len(lane) == 2 for lane in e.get_state()["lanes"]
    )
  with pytest.raises(ValueError):
    reader(ds, max_lane_steps=0)


def test_pieces_checkpoint_restore(ds, tok):
  for t in (None, tok):
    base = LaneBatchIterDataset(
      ds, "train", 3, 23, seed=5, tokenizer=t, shard_index=0, shard_count=1, max_lane_steps=31
    )
    grain.experimental.assert_equal_output_after_checkpoint(
      grain.experimental.LimitIterDataset(base, count=8)
    )
    it = iter(base)
    state = _assert_json_restore(base, it, skip=9, n=8)
    assert state["max_lane_steps"] == 31 and all(len(lane) == 3 for lane in state["lanes"])
    plain = iter(
      LaneBatchIterDataset(ds, "train", 3, 23, seed=5, tokenizer=t, shard_index=0, shard_count=1)
    )
    with pytest.raises(ValueError, match="max_lane_steps"):
      plain.set_state(state)
    with pytest.raises(ValueError, match="max_lane_steps"):
      iter(base).set_state({k: v for k, v in state.items() if k != "max_lane_steps"})


def test_tokenizer_format_and_round_trip(ds, tok, tmp_path):
  assert len(tokenizer.base_vocab()) < len(tok) <= 400  # base + best candidates (corpus is small)
  assert all(len(a) >= len(b) for a, b in zip(tok.tokens, tok.tokens[1:]))
  assert any(t == K.KEY_BYTES[K.DOWN] * 3 for t in tok.tokens)
  assert any(t.isalpha() and len(t) > 2 for t in tok.tokens)
  path = str(tmp_path / "tok.txt")
  tok.save(path)
  lines = open(path).read().split("\n")
  assert lines[0] == HEADER and json.loads(lines[1]).encode("latin-1") == tok.tokens[0]
  assert Tokenizer.load(path).tokens == tok.tokens
  keys = Split(ds).segment_arrays(1)[0]
  ids, starts = tok.encode_all(keys)
  assert tok.decode(ids) == keys.tolist() and len(ids) < 0.8 * len(keys)
  assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:]))
  (tmp_path / "bad.txt").write_text("[]\n")
  with pytest.raises(TokenizerError):
    Tokenizer.load(str(tmp_path / "bad.txt"))


def test_grouping_matches_key_stream(ds, tok):
  """Flattened tokens = the K=1 stream; kept frames = K=1 frames at token starts."""
  r1 = reader(ds, B=2, T=64)
  rt = reader(ds, B=2, T=32, tokenizer=tok)
  k1 = [r1.next_batch() for _ in range(12)]
  kt = [rt.next_batch() for _ in range(6)]
  for lane in range(2):
    acts1 = np.concatenate([b["actions"][lane] for b in k1])
    fr1 = np.concatenate([b["frames"][lane] for b in k1])
    ids = np.concatenate([b["actions"][lane] for b in kt])
    frt = np.concatenate([b["frames"][lane] for b in kt])
    flat = tok.decode(ids.tolist())
    # Both lanes took the same first segment, so the streams agree up to its end.
    n = min(len(flat), len(acts1), r1.split.segments[r1.queue(0)[lane]]["n_steps"])
    assert np.array_equal(np.array(flat[:n]), acts1[:n])
    pos = np.cumsum([0] + [len(tok.decode([i])) for i in ids.tolist()])[:-1]
    keep = pos < n
    assert np.array_equal(frt[keep], fr1[pos[keep]])


def test_random_windows(ds, tok):
  rw = random_windows(ds, "train", 50, seed=3, tokenizer=tok)
  a, b, c = rw[4], rw[4], rw[5]
  for k in a:
    assert np.array_equal(a[k], b[k])
  assert a["reset"][0] and not a["reset"][1:].any()
  v = a["valid"]
  assert v[0] and (np.diff(v.astype(int)) <= 0).all()
  assert not np.array_equal(a["actions"], c["actions"])
  batch = rw.batch(4)[0]
  assert batch["frames"].shape == (4, 50, ROWS, COLS, 7) and batch["actions"].dtype == np.int32


def test_tokenizer_cli(ds, tmp_path, capsys):
  path = str(tmp_path / "t.txt")
  assert vocab.main([ds, "--size", "300", "--out", path]) == 0
  info = json.loads(capsys.readouterr().out.strip())
  assert info["tokens"] == len(Tokenizer.load(path)) <= 300 and info["keys_per_step"] > 1


def test_random_window_frames_are_stored_frames(ds):
  split = Split(ds)
  rw = random_windows(ds, "train", 20, seed=9)
  for i in range(5):
    w = rw[i]
    n = int(w["valid"].sum())
    hits = []
    for s in range(len(split.segments)):
      keys, cursor = split.segment_arrays(s)
      frames = codec.to_rgb(segment_frames(split, s))
      for p in range(len(keys) - n + 1):
        if (
          np.array_equal(keys[p : p + n], w["actions"][:n])
          and np.array_equal(frames[p : p + n], w["frames"][:n])
          and np.array_equal(cursor[p : p + n], w["cursor"][:n])
        ):
          hits.append((s, p))
    assert hits, i


@pytest.mark.parametrize("with_tok", [False, True])
def test_vocab_size_checked_where_batches_are_made(ds, tok, with_tok):
  """An action id >= vocab_size raises ValueError naming the id and the size (the model
  would give a NaN loss); the largest id passes with vocab_size = id + 1."""
  t = tok if with_tok else None
  split = Split(ds)
  keys = [split.segment_arrays(i)[0] for i in range(len(split.segments))]
  top = max(int(max(k) if t is None else max(t.encode_all(k)[0])) for k in keys)
  assert top >= 4
  n_batches = sum(map(len, keys)) // 80 + 2  # B * T = 80: a whole epoch
  r = reader(ds, B=2, T=40, tokenizer=t, vocab_size=top + 1)
  assert max(int(r.next_batch()["actions"].max()) for _ in range(n_batches)) == top
  rw = random_windows(ds, "train", 40, seed=2, tokenizer=t, vocab_size=top + 1)
  assert max(int(rw[i]["actions"].max()) for i in range(40)) <= top
  msg = (
    rf"\(train\): action id {top} \(segment \d+, step \d+\) is outside the model's "
    rf"vocabulary of {top} ids \(0\.\.{top - 1}\).*model.vocab_size"
  )
  with pytest.raises(ValueError, match=msg):
    r = reader(ds, B=2, T=40, tokenizer=t, vocab_size=top)
    for _ in range(n_batches):
      r.next_batch()
  low = 4  # below every typed key id
  with pytest.raises(ValueError, match=rf"action id \d+ .*vocabulary of {low} ids"):
    next(
      iter(
        LaneBatchIterDataset(
          ds, "train", 2, 40, seed=0, shard_index=0, shard_count=1, tokenizer=t, vocab_size=low
        )
      )
    )
  with pytest.raises(ValueError, match=rf"vocabulary of {low} ids"):
    [random_windows(ds, "train", 40, seed=2, tokenizer=t, vocab_size=low)[i] for i in range(8)]
