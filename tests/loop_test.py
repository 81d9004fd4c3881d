"""The training loop end to end on a synthetic repository: learning, resume, guards, configs."""

import dataclasses
import functools
import glob
import importlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines import synthetic
from experiments import smoke
from rcfam_jax import checkpoint, experiment, loop, metrics, model, optim, train
from rcfam_jax.config import ModelConfig, from_dict

EXPERIMENTS = sorted(
  os.path.basename(p)[:-3]
  for p in glob.glob("experiments/*.py")
  if not os.path.basename(p).startswith(("_", "common"))
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("repo"))
  synthetic.make_repo(path, n_commits=10, seed=3, lines=30, special=False)
  return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("data") / "ds")


def smoke_config(repo, dataset_dir, **train_overrides):
  c = smoke.get_config(f"steps={train_overrides.pop('steps', 12)}")
  c.data.sources = [repo]
  c.data.dir = dataset_dir
  c.data.val_fraction = 0.3
  for k, v in train_overrides.items():
    c.train[k] = v
  return c


def _params(workdir):
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"))
  step, tree, data_state = ckpt.restore_latest(None) or (None, None, None)
  ckpt.close()
  return step, tree, data_state


def test_smoke_training_lowers_loss_and_writes_outputs(repo, dataset_dir, tmp_path):
  workdir = str(tmp_path / "run")
  c = smoke_config(repo, dataset_dir, steps=30)
  c.optim.lr = 1e-2
  last = loop.train_and_evaluate(c, workdir)
  log = [r for r in metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "train_loss" in r]
  assert log[-1]["train_loss"] < 0.8 * log[0]["train_loss"], log
  assert np.isfinite(last["val_loss"]) and "val_loss_pos1" in last
  assert os.path.exists(os.path.join(workdir, "loss.png"))
  assert glob.glob(os.path.join(workdir, "tb", "events.out.tfevents.*"))


def test_kill_and_resume_equals_straight_run(repo, dataset_dir, tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  loop.train_and_evaluate(smoke_config(repo, dataset_dir, steps=8), straight)
  loop.train_and_evaluate(smoke_config(repo, dataset_dir, steps=8), resumed, stop_after=5)
  assert _params(resumed)[0] == 5
  loop.train_and_evaluate(smoke_config(repo, dataset_dir, steps=8), resumed)
  s1, t1, d1 = _params(straight)
  s2, t2, d2 = _params(resumed)
  assert s1 == s2 == 8
  assert d1 == d2  # the same data order: the iterator state matches
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), t1, t2)


def test_max_minutes_stops_with_evaluation_and_checkpoint(repo, dataset_dir, tmp_path):
  workdir = str(tmp_path / "run")
  c = smoke_config(repo, dataset_dir, steps=50, eval_every=1000, eval_at=(1,))
  c.train.max_minutes = 1e-9  # already out of time after the first step
  last = loop.train_and_evaluate(c, workdir)
  rows = metrics.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in rows if "val_loss" in r] == [1]  # eval_at, once, then the stop
  assert [r["step"] for r in rows if "train_loss" in r] == [1]
  assert _params(workdir)[0] == 1 and np.isfinite(last["val_loss"])


def test_frames_on_host_trains_like_frames_on_device(repo, dataset_dir, tmp_path):
  runs = {}
  for on_host in (False, True):
    c = smoke_config(repo, dataset_dir, steps=3)
    c.exec.frames_on_host = on_host
    runs[on_host] = loop.train_and_evaluate(c, str(tmp_path / f"run{on_host}"))
  np.testing.assert_allclose(runs[True]["val_loss"], runs[False]["val_loss"], rtol=1e-5)
  np.testing.assert_allclose(runs[True]["train_loss"], runs[False]["train_loss"], rtol=1e-5)


def test_corrupt_latest_checkpoint_falls_back(repo, dataset_dir, tmp_path):
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(smoke_config(repo, dataset_dir, steps=12), workdir, stop_after=9)
  latest = os.path.join(workdir, "checkpoints")
  steps = sorted(int(s) for s in os.listdir(latest) if s.isdigit())
  assert steps[-1] == 9 and len(steps) >= 2
  for f in glob.glob(os.path.join(latest, "9", "params", "**", "*"), recursive=True):
    if os.path.isfile(f):
      with open(f, "wb") as fh:
        fh.write(b"garbage")
  loop.train_and_evaluate(smoke_config(repo, dataset_dir, steps=12), workdir)
  assert _params(workdir)[0] == 12


def test_non_finite_loss_stops_with_a_clear_error(repo, dataset_dir, tmp_path):
  c = smoke_config(repo, dataset_dir, steps=12, ckpt_every=1)
  c.optim.lr, c.optim.clip_norm, c.optim.warmup_steps = 1e30, 0.0, 0
  with pytest.raises(loop.NonFiniteLossError, match="non-finite training loss .* step"):
    loop.train_and_evaluate(c, str(tmp_path / "run"))


@pytest.mark.parametrize(
  "section, key, value, match",
  [
    ("model", "vocab_size", 16, "raise model.vocab_size"),
    ("model", "rows", 16, "model.rows: dataset 8, asked 16"),
    ("train", "microbatches", 3, "not divisible by train.microbatches"),
    ("optim", "name", "sgd", "optim.name"),
    ("train", "max_minutes", -1.0, "max_minutes must be >= 0"),
  ],
)
def test_bad_config_values_fail_at_start(repo, dataset_dir, tmp_path, section, key, value, match):
  c = smoke_config(repo, dataset_dir)
  c[section][key] = value
  with pytest.raises(ValueError, match=match):
    loop.train_and_evaluate(c, str(tmp_path / "run"))


def test_missing_dataset_without_build_says_what_to_do(tmp_path):
  c = smoke.get_config()
  c.data.dir, c.data.build = str(tmp_path / "none"), False
  with pytest.raises(FileNotFoundError, match="make data EXP="):
    loop.train_and_evaluate(c, str(tmp_path / "run"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_loads_and_lowers_at_tiny_size(name):
  exp = experiment.parse_config(importlib.import_module(f"experiments.{name}").get_config())
  tiny = from_dict(
    ModelConfig,
    {
      **exp.model.__dict__,
      "d_model": 16,
      "n_head": 2,
      "n_layer": 1,
      "lstm_hidden": 16,
      "vocab_size": 32,
      "compute_dtype": "float32",
    },
  )
  tx = optim.make(exp.optim, exp.train.steps)
  b, t = 2, min(exp.train.seq_len, 4)
  state = jax.eval_shape(lambda: train.init_train_state(jax.random.PRNGKey(0), tiny, tx))
  rnn = jax.eval_shape(lambda p: model.initial_state(p, b), state.params)
  batch = {
    "frames": jax.ShapeDtypeStruct((b, t) + tiny.frame_shape, jnp.uint8),
    "actions": jax.ShapeDtypeStruct((b, t), jnp.int32),
    "valid": jax.ShapeDtypeStruct((b, t), jnp.bool_),
    "reset": jax.ShapeDtypeStruct((b, t), jnp.bool_),
  }
  step = jax.jit(
    functools.partial(
      train.train_step, cfg=tiny, ex=dataclasses.replace(exp.exec, attention_impl=None), tx=tx
    )
  )
  assert step.lower(state, batch, rnn) is not None
