"""Grain lane reader, random windows and the tokenizer (DATA.md tests 8, 9)."""

import json

import grain
import numpy as np
import pytest

from data_pipelines import build, codec, render, replay, sources, synthetic
from data_pipelines import keys as K
from data_pipelines import tokenizer
from data_pipelines.reader import LaneBatchIterDataset, LaneReader, Split, random_windows
from data_pipelines.tokenizer import HEADER, Tokenizer, TokenizerError

ROWS, COLS, WINDOW = 12, 40, 32
CFG = build.BuildConfig(rows=ROWS, cols=COLS, window=WINDOW, max_keys_per_commit=3000,
                        max_segment_steps=150, workers=1)


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
    cells = np.concatenate([split.cells(r) for r in range(s["first_record"],
                                                          s["first_record"] + s["n_windows"])])
    return cells[:s["n_steps"]]


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
            assert {l.seg for l in r.lanes} <= sh


def test_lanes_continuous_and_each_segment_once_per_epoch(ds):
    r = reader(ds, B=3, T=37)
    taken = []
    orig = r._next_segment
    r._next_segment = lambda: taken.append(orig()) or taken[-1]
    split = r.split
    n = len(split.segments)
    batches = [r.next_batch() for _ in range(60)]
    assert sorted(taken[:n]) == list(range(n)) and sorted(taken[n:2 * n]) == list(range(n))
    assert taken[:n] != taken[n:2 * n]
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
            match = [i for i in range(n) if len(keys[i]) >= len(chunk)
                     and np.array_equal(keys[i][:len(chunk)], chunk)]
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
        base = LaneBatchIterDataset(ds, "train", 2, 23, seed=5, tokenizer=t, shard_index=0,
                                    shard_count=1)
        grain.experimental.assert_equal_output_after_checkpoint(
            grain.experimental.LimitIterDataset(base, count=8))
        it = iter(base)
        for _ in range(7):
            next(it)
        state = json.loads(json.dumps(it.get_state()))
        want = [next(it) for _ in range(5)]
        it2 = iter(base)
        it2.set_state(state)
        assert it2.get_state() == state
        for w in want:
            got = next(it2)
            for k in w:
                assert np.array_equal(w[k], got[k])


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
    assert tokenizer.main([ds, "--size", "300", "--out", path]) == 0
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
                if (np.array_equal(keys[p:p + n], w["actions"][:n])
                        and np.array_equal(frames[p:p + n], w["frames"][:n])
                        and np.array_equal(cursor[p:p + n], w["cursor"][:n])):
                    hits.append((s, p))
        assert hits, i
