"""Teacher-forced evaluation of a tiny trained run: ranges, consistency with training, CLI."""
import json

import numpy as np
import pytest

from data_pipelines import keys as K
from inference_test import tiny_run
from rcfam_jax import evaluate


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
  assert evaluate.main(["--workdir", workdir, "--mode", "teacher", "--batches", "2",
                        "--seq-len", "6", "--buckets", "3"]) == 0
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
  from rcfam_jax import inference
  return evaluate.held_out_tasks(inference.read_config(run[0]), 4)


def test_held_out_tasks_are_real_commits(tasks):
  assert len(tasks) == 4
  for t in tasks:
    assert t.keys[-1] == K.COMMIT and K.COMMIT not in t.keys[:-1]
    assert t.target != t.editor.file_texts()  # synthetic commits change files


def test_scripted_replay_of_the_true_actions_scores_exact(tasks, tmp_path):
  make = lambda t: (lambda frame, it=iter(t.keys): next(it))
  res = evaluate.closed_loop(make, tasks, 8, 16, cast_dir=str(tmp_path))
  assert res["exact_match"] == 1.0 and res["distance"] == 0.0 and res["committed"] == 1.0
  assert res["noop_distance"] > 0.0
  assert all(r["steps"] == r["real_steps"] for r in res["rollouts"])
  lines = open(tmp_path / "rollout_000.cast").read().splitlines()
  assert json.loads(lines[0])["version"] == 2
  assert len(lines) == 1 + res["rollouts"][0]["steps"]


def test_random_policy_scores_near_zero(tasks):
  rng = np.random.default_rng(0)
  res = evaluate.closed_loop(lambda t: lambda frame: int(rng.integers(4, K.NUM_KEYS)), tasks,
                             8, 16, max_steps=200)
  assert res["exact_match"] == 0.0 and res["distance"] > 0.0


def test_closed_loop_cli_with_the_model(run, capsys, tmp_path):
  assert evaluate.main(["--workdir", run[0], "--mode", "closed-loop", "--tasks", "2",
                        "--max-steps", "20", "--cast-dir", str(tmp_path)]) == 0
  res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert res["tasks"] == 2 and 0.0 <= res["exact_match"] <= 1.0
  assert 0.0 <= res["distance"] <= 1.0 and res["mean_steps"] <= 20
  assert len(list(tmp_path.glob("*.cast"))) == 2


def test_teacher_metrics_equal_a_direct_computation_from_apply(run):
  from rcfam_jax import data, inference, model
  params, cfg, info = inference.load(run[0])
  batches = data.eval_batches(inference.dataset(info), "validation", 2, 8, 2)
  res = evaluate.teacher_forced(params, cfg, info.exp.bptt, batches, buckets=2)
  hits1 = hits5 = nll = n = 0.0
  for b in batches:
    logits, _ = model.apply(params, b["frames"], model.initial_state(params, 2), b["reset"],
                            cfg=cfg)
    logits, a, v = np.asarray(logits), b["actions"], b["valid"]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1,
                                                                             keepdims=True)) \
        - logits.max(-1, keepdims=True)
    top5 = np.argsort(-logits, -1)[..., :5]
    hits1 += np.sum((np.argmax(logits, -1) == a) * v)
    hits5 += np.sum(np.any(top5 == a[..., None], -1) * v)
    nll -= np.sum(np.take_along_axis(logp, a[..., None].astype(int), -1)[..., 0] * v)
    n += v.sum()
  assert res["count"] == n
  assert res["acc"] == pytest.approx(hits1 / n) and res["top5"] == pytest.approx(hits5 / n)
  assert res["loss"] == pytest.approx(nll / n, rel=1e-4)


def test_closed_loop_refuses_tokenized_runs(run):
  import dataclasses
  from rcfam_jax import inference
  exp = inference.read_config(run[0])
  exp = dataclasses.replace(exp, data=dataclasses.replace(exp.data, tokenizer_size=256))
  with pytest.raises(NotImplementedError, match="tokenizer_size"):
    evaluate.held_out_tasks(exp, 1)
