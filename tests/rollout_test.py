"""Inference: streaming step == apply, flat compiled memory, samplers, load() of a trained run."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, random_batch

from data_pipelines import synthetic
from experiments import smoke
from rcfam_jax import checkpoint, loop, model
from rcfam_jax import workdir as workdir_lib
from rcfam_jax.research import rollout

_RUNS = {}


def tiny_run(tmp_path_factory, steps=6):
  """A tiny trained run on a synthetic repository: (workdir, last metrics); once per session."""
  if steps in _RUNS:
    return _RUNS[steps]
  root = tmp_path_factory.mktemp("run")
  repo = str(root / "repo")
  synthetic.make_repo(repo, n_commits=10, seed=3, lines=30, special=False)
  c = smoke.get_config(f"steps={steps}")
  c.data.sources, c.data.dir, c.data.val_fraction = [repo], str(root / "ds"), 0.3
  workdir = str(root / "wd")
  _RUNS[steps] = workdir, loop.train_and_evaluate(c, workdir)
  return _RUNS[steps]


def test_step_over_frames_equals_apply(tiny_params):
  b, t = 2, 5
  frames = random_batch(jax.random.PRNGKey(1), TINY, b, t)["frames"]
  want, want_state = model.apply(tiny_params, frames, rollout.init_state(tiny_params, b), cfg=TINY)
  step = rollout.make_step(TINY)
  state, got = rollout.init_state(tiny_params, b), []
  for i in range(t):
    logits, state = step(tiny_params, frames[:, i], state)
    got.append(logits)
  np.testing.assert_allclose(jnp.stack(got, 1), want, rtol=1e-4, atol=1e-5)
  jax.tree.map(
    lambda a, w: np.testing.assert_allclose(a, w, rtol=1e-4, atol=1e-5), state, want_state
  )
  assert step._cache_size() == 1  # one program for every position


def test_step_compiled_memory_is_the_same_at_any_position(tiny_params):
  step = rollout.make_step(TINY)
  frame = random_batch(jax.random.PRNGKey(2), TINY, 1, 1)["frames"][:, 0]
  state0 = rollout.init_state(tiny_params, 1)
  state = state0
  for _ in range(20):
    _, state = step(tiny_params, frame, state)

  def mem(s):
    m = step.lower(tiny_params, frame, s).compile().memory_analysis()
    return (m.temp_size_in_bytes, m.argument_size_in_bytes, m.output_size_in_bytes)

  assert mem(state0) == mem(state)
  assert step._cache_size() == 1


def test_greedy_is_argmax():
  logits = jax.random.normal(jax.random.PRNGKey(0), (7, 30))
  np.testing.assert_array_equal(rollout.greedy(logits), np.argmax(logits, -1))
  np.testing.assert_array_equal(
    rollout.sample(None, logits, temperature=0.0), np.argmax(logits, -1)
  )


def test_top_k_never_picks_outside_the_top_k():
  logits = jax.random.normal(jax.random.PRNGKey(0), (4, 50))
  keys = jax.random.split(jax.random.PRNGKey(1), 300)
  picks = jax.vmap(lambda k: rollout.sample(k, logits, temperature=5.0, top_k=3))(keys)
  top3 = np.argsort(-np.asarray(logits), -1)[:, :3]
  for row in range(4):
    assert set(np.asarray(picks[:, row]).tolist()) <= set(top3[row].tolist())
  assert len(set(np.asarray(picks[:, 0]).tolist())) > 1  # it does sample


def test_low_temperature_approaches_greedy():
  logits = jax.random.normal(jax.random.PRNGKey(0), (64, 20))
  keys = jax.random.split(jax.random.PRNGKey(3), 50)
  agree = lambda temp: float(
    np.mean(
      jax.vmap(lambda k: rollout.sample(k, logits, temperature=temp))(keys) == np.argmax(logits, -1)
    )
  )
  a = [agree(t) for t in (1.0, 0.3, 0.1, 1e-4)]
  assert a == sorted(a) and a[0] < 0.9 and a[-1] == 1.0


def test_sample_rejects_bad_arguments():
  with pytest.raises(ValueError, match="temperature"):
    rollout.sample(jax.random.PRNGKey(0), jnp.zeros((3,)), temperature=-1.0)
  with pytest.raises(ValueError, match="top_k"):
    rollout.sample(jax.random.PRNGKey(0), jnp.zeros((3,)), top_k=0)


def test_load_round_trip_on_a_trained_run(tmp_path_factory):
  workdir, _ = tiny_run(tmp_path_factory)
  params, cfg, run = workdir_lib.load(workdir)
  assert run.step == 6 and cfg == run.exp.model and cfg.rows == 8
  ds = rollout.dataset(run)
  assert "validation" in ds.splits and ds.n_actions <= run.n_actions
  ck = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"))
  _, tree, _ = ck.restore_latest(None)
  ck.close()
  jax.tree.map(np.testing.assert_array_equal, params, tree["params"])
  frames = np.zeros((1, 3) + cfg.frame_shape, np.uint8)
  logits, _ = model.apply(params, frames, rollout.init_state(params, 1), cfg=cfg)
  assert logits.shape == (1, 3, cfg.vocab_size) and np.all(np.isfinite(logits))


def test_load_errors_are_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a training workdir"):
    workdir_lib.load(str(tmp_path))
