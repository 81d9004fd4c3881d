"""Evaluation of tiny trained runs: teacher-forced metrics, closed loop (one key per action and
tokenized), CLI."""

import copy
import dataclasses
import json

import numpy as np
import pytest
from rollout_test import tiny_run

from data_pipelines import keys as K
from data_pipelines import tokenizer as tokenizer_lib
from experiments import smoke
from rcfam_jax import loop
from rcfam_jax import workdir as workdir_lib
from rcfam_jax.research import evaluate, rollout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return tiny_run(tmp_path_factory)


def test_teacher_forced_metrics_are_in_range_and_match_training(run):
  workdir, last = run
  res = evaluate.run_teacher(workdir)
  assert res["step"] == 6 and res["count"] > 0
  assert np.isfinite(res["loss"]) and res["loss"] > 0
  assert 0.0 <= res["acc"] <= res["top5"] <= 1.0
  assert res["loss"] == pytest.approx(last["val_loss"], rel=1e-5)  # the same fixed windows
  assert len(res["buckets"]) == 2
  assert sum(b["count"] for b in res["buckets"]) == res["count"]
  for i, b in enumerate(res["buckets"]):
    assert b["loss"] == pytest.approx(last[f"val_loss_pos{i}"], rel=1e-5)
    assert 0.0 <= b["acc"] <= b["top5"] <= 1.0


def test_cli_prints_one_json_line(run, capsys):
  workdir, _ = run
  assert (
    evaluate.main(
      [
        "--workdir",
        workdir,
        "--mode",
        "teacher",
        "--batches",
        "2",
        "--seq-len",
        "6",
        "--buckets",
        "3",
      ]
    )
    == 0
  )
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 1
  res = json.loads(lines[0])
  assert res["batches"] == 2 and res["seq_len"] == 6 and len(res["buckets"]) == 3
  assert res["count"] <= 2 * 2 * 6 and 0.0 <= res["acc"] <= res["top5"] <= 1.0


def test_missing_split_says_how_to_hold_out_data(run):
  with pytest.raises(ValueError, match="no 'test' split"):
    evaluate.run_teacher(run[0], split="test")


@pytest.fixture(scope="module")
def tasks(run):

  return evaluate.held_out_tasks(workdir_lib.read_config(run[0]), 4)


def test_held_out_tasks_are_real_commits(tasks):
  assert len(tasks) == 4
  for t in tasks:
    assert t.keys[-1] == K.COMMIT and K.COMMIT not in t.keys[:-1]
    assert t.target != t.editor.file_texts()  # synthetic commits change files


def test_scripted_replay_of_the_true_actions_scores_exact(tasks, tmp_path):
  make = lambda t: lambda frame, it=iter(t.keys): next(it)
  res = evaluate.closed_loop(make, tasks, 8, 16, cast_dir=str(tmp_path))
  assert res["exact_match"] == 1.0 and res["distance"] == 0.0 and res["committed"] == 1.0
  assert res["noop_distance"] > 0.0
  assert all(
    r["steps"] == r["real_steps"] == r["keys"] == r["real_keys"] and not r["invalid"]
    for r in res["rollouts"]
  )
  lines = open(tmp_path / "rollout_000.cast").read().splitlines()
  assert json.loads(lines[0])["version"] == 2
  assert len(lines) == 1 + res["rollouts"][0]["steps"]


def test_random_policy_scores_near_zero(tasks):
  rng = np.random.default_rng(0)
  res = evaluate.closed_loop(
    lambda t: lambda frame: int(rng.integers(4, K.NUM_KEYS)), tasks, 8, 16, max_steps=200
  )
  assert res["exact_match"] == 0.0 and res["distance"] > 0.0


def test_closed_loop_cli_with_the_model(run, capsys, tmp_path):
  assert (
    evaluate.main(
      [
        "--workdir",
        run[0],
        "--mode",
        "closed-loop",
        "--tasks",
        "2",
        "--max-steps",
        "20",
        "--cast-dir",
        str(tmp_path),
      ]
    )
    == 0
  )
  res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert res["tasks"] == 2 and 0.0 <= res["exact_match"] <= 1.0
  assert 0.0 <= res["distance"] <= 1.0 and res["mean_steps"] <= 20
  assert len(list(tmp_path.glob("*.cast"))) == 2


def test_teacher_metrics_equal_a_direct_computation_from_apply(run):
  from rcfam_jax import data, model

  params, cfg, info = workdir_lib.load(run[0])
  batches = data.eval_batches(rollout.dataset(info), "validation", 2, 8, 2)
  res = evaluate.teacher_forced(params, cfg, info.exp.exec, batches, buckets=2)
  hits1 = hits5 = nll = n = 0.0
  for b in batches:
    logits, _ = model.apply(
      params, b["frames"], model.initial_state(params, 2), b["reset"], cfg=cfg
    )
    logits, a, v = np.asarray(logits), b["actions"], b["valid"]
    logp = (
      logits
      - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
      - logits.max(-1, keepdims=True)
    )
    top5 = np.argsort(-logits, -1)[..., :5]
    hits1 += np.sum((np.argmax(logits, -1) == a) * v)
    hits5 += np.sum(np.any(top5 == a[..., None], -1) * v)
    nll -= np.sum(np.take_along_axis(logp, a[..., None].astype(int), -1)[..., 0] * v)
    n += v.sum()
  assert res["count"] == n
  assert res["acc"] == pytest.approx(hits1 / n) and res["top5"] == pytest.approx(hits5 / n)
  assert res["loss"] == pytest.approx(nll / n, rel=1e-4)


# -- tokenized runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok_run(run, tmp_path_factory):
  """A tiny run trained on `run`'s dataset with a learned tokenizer: (workdir, tokenizer)."""
  d = workdir_lib.read_config(run[0]).data
  c = smoke.get_config("steps=2")
  c.data.sources, c.data.dir, c.data.val_fraction = list(d.sources), d.dir, d.val_fraction
  c.data.tokenizer_size = c.model.vocab_size = 320
  workdir = str(tmp_path_factory.mktemp("tok") / "wd")
  loop.train_and_evaluate(c, workdir)
  info = workdir_lib.RunInfo(workdir, 0, workdir_lib.read_config(workdir))
  return workdir, evaluate.run_tokenizer(info)


def test_every_token_of_a_learned_vocabulary_decodes_to_its_bytes(tok_run):
  tok = tok_run[1]
  base = set(tokenizer_lib.base_vocab())
  assert any(len(tok.token_keys(i)) > 2 for i, t in enumerate(tok.tokens) if t not in base)
  undecodable = 0
  for i, t in enumerate(tok.tokens):
    try:
      keys = tok.token_keys(i)
    except tokenizer_lib.TokenizerError as e:
      assert t in base and len(t) == 1 and t not in K.BYTES_TO_KEY
      assert "not a sequence of editor keys" in str(e) and f"token {i}" in str(e)
      undecodable += 1
      continue
    assert b"".join(K.KEY_BYTES[k] for k in keys) == t
    assert tok.encode(keys, 0) == (i, len(keys))  # the dataset encodes these keys as this token
  assert undecodable == 256 - sum(len(b) == 1 for b in K.BYTES_TO_KEY)
  with pytest.raises(tokenizer_lib.TokenizerError, match="outside this vocabulary"):
    tok.token_keys(len(tok))
  with pytest.raises(tokenizer_lib.TokenizerError, match=r"offset 2 \(b'\\x1b\[Z'\)"):
    tokenizer_lib.split_keys(b"ab\x1b[Z")


def test_scripted_true_tokens_drive_a_tokenized_run_to_exact_match(tok_run, tasks, tmp_path):
  workdir, tok = tok_run
  exp = workdir_lib.read_config(workdir)
  ts = evaluate.held_out_tasks(exp, 4)
  assert [t.keys for t in ts] == [t.keys for t in tasks]
  seen = {"tok": [], "key": []}

  def scripted(actions, frames):
    it = iter(actions)
    return lambda frame: frames.append(frame) or next(it)

  res = evaluate.closed_loop(
    lambda t: scripted(tok.encode_all(t.keys)[0], seen["tok"]),
    ts,
    8,
    16,
    tokenizer=tok,
    cast_dir=str(tmp_path),
  )
  assert res["exact_match"] == 1.0 and res["distance"] == 0.0 and res["committed"] == 1.0
  assert res["invalid_actions"] == 0.0 and res["noop_distance"] > 0.0
  assert res["mean_steps"] == res["mean_real_steps"] < res["mean_keys"] == res["mean_real_keys"]
  lines = open(tmp_path / "rollout_000.cast").read().splitlines()
  assert len(lines) == 1 + res["rollouts"][0]["steps"]
  # The model sees the frame shown before each token's first key: the one-key-per-action
  # rollout's frames (the dataset's frames) at the token starts.
  evaluate.closed_loop(lambda t: scripted(t.keys, seen["key"]), ts, 8, 16)
  starts = np.concatenate(
    [
      np.array(tok.encode_all(t.keys)[1]) + sum(len(u.keys) for u in ts[:i])
      for i, t in enumerate(ts)
    ]
  )
  np.testing.assert_array_equal(np.stack(seen["tok"]), np.stack(seen["key"])[starts])


def test_commit_inside_a_token_stops_and_bad_tokens_press_nothing(tasks):
  c = K.KEY_BYTES[K.COMMIT]
  tok = tokenizer_lib.Tokenizer(tokenizer_lib.base_vocab() + [b"ab" + c + b"cd", b"xy" + c, b"zz"])
  ids = [tok.ids[b"\x01"], tok.ids[b"zz"], len(tok) + 5, tok.ids[b"ab" + c + b"cd"], tok.ids[b"zz"]]
  t = tasks[0]
  r = rollout.rollout(
    lambda frame, it=iter(ids): next(it), t.editor, 8, 16, 10, action_keys=evaluate.action_keys(tok)
  )
  a, b, z = (K.char_key(ch) for ch in "abz")
  assert r.actions == ids[:4] and r.keys == [z, z, a, b, K.COMMIT] and len(r.screens) == 4
  ed = copy.deepcopy(t.editor)
  ed.press_all(r.keys)
  assert r.files == ed.file_texts()
  res = evaluate.closed_loop(
    lambda t: lambda frame, it=iter(ids): next(it), [t], 8, 16, tokenizer=tok
  )
  row = res["rollouts"][0]
  assert (row["steps"], row["keys"], row["invalid"], row["committed"]) == (4, 5, 2, True)
  end = evaluate.closed_loop(lambda t: lambda frame: tok.ids[b"xy" + c], [t], 8, 16, tokenizer=tok)
  assert end["rollouts"][0]["steps"] == 1 and end["rollouts"][0]["keys"] == 3
  assert end["committed"] == 1.0
  budget = evaluate.closed_loop(
    lambda t: lambda frame: tok.ids[b"zz"], [t], 8, 16, tokenizer=tok, max_steps=5
  )
  assert budget["rollouts"][0]["steps"] == 5 and budget["rollouts"][0]["keys"] == 10
  assert budget["committed"] == 0.0


def test_closed_loop_cli_on_a_tokenized_run(tok_run, capsys, tmp_path):
  workdir, tok = tok_run
  assert (
    evaluate.main(
      [
        "--workdir",
        workdir,
        "--mode",
        "closed-loop",
        "--tasks",
        "2",
        "--max-steps",
        "12",
        "--temperature",
        "1",
        "--cast-dir",
        str(tmp_path),
      ]
    )
    == 0
  )
  res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert res["tokens"] == len(tok) and res["tasks"] == 2 and res["mean_steps"] <= 12
  assert res["mean_keys"] > 0.0  # sampled tokens are decoded and pressed
  assert 0.0 <= res["exact_match"] <= 1.0 and 0.0 <= res["distance"] <= 1.0
  for r in res["rollouts"]:
    assert r["real_steps"] < r["real_keys"] and r["keys"] >= r["steps"] - r["invalid"]
  assert len(list(tmp_path.glob("*.cast"))) == 2


def test_tokenized_run_without_its_tokenizer_says_how_to_fix(tok_run, tmp_path):
  info = workdir_lib.RunInfo(tok_run[0], 0, workdir_lib.read_config(tok_run[0]))
  exp = info.exp
  gone = dataclasses.replace(exp, data=dataclasses.replace(exp.data, dir=str(tmp_path / "no")))
  with pytest.raises(FileNotFoundError, match="tokenizer_size=320.*--data-dir"):
    evaluate.run_tokenizer(dataclasses.replace(info, exp=gone))
  small = dataclasses.replace(exp, model=dataclasses.replace(exp.model, vocab_size=128))
  with pytest.raises(ValueError, match="not the run's tokenizer"):
    evaluate.run_tokenizer(dataclasses.replace(info, exp=small))
  untok = dataclasses.replace(exp, data=dataclasses.replace(exp.data, tokenizer_size=0))
  assert evaluate.run_tokenizer(dataclasses.replace(info, exp=untok)) is None
