"""Checkpointer: round trip, last-N plus best retention, items read alone, corruption fallback;
PreemptionGuard."""

import logging
import os
import pathlib
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rcfam_jax import checkpoint
from rcfam_jax.train import TrainState


def _state(seed=0):
  k = jax.random.key(seed)
  params = {"w": jax.random.normal(k, (4, 3)), "emb": jnp.ones((5, 2), jnp.bfloat16)}
  return {
    "train": TrainState(jnp.int32(seed), params, optax.adam(1e-3).init(params)),
    "rng": {"key": jax.random.key_data(jax.random.fold_in(k, 1))},
    "lstm": {"h": jnp.full((2, 3), float(seed)), "c": jnp.arange(6, dtype=jnp.int32)},
  }


def _assert_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def _steps(d):
  return sorted(int(p.name) for p in pathlib.Path(d).iterdir() if p.name.isdigit())


def test_round_trip_nested_pytree_and_data_state(tmp_path):
  state, data = _state(3), {"shard": 1, "offset": 1234, "files": ["a", "b"]}
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    assert ckpt.restore_latest(jax.eval_shape(lambda: state)) is None
    assert ckpt.save(7, state, data)
    ckpt.wait()
    assert ckpt.latest_step() == 7
  ckpt = checkpoint.Checkpointer(str(tmp_path))  # a fresh process resuming
  step, got, got_data = ckpt.restore_latest(jax.eval_shape(lambda: state))
  assert step == 7 and got_data == data
  _assert_equal(state, got)
  assert got["train"].params["emb"].dtype == jnp.bfloat16
  key = jax.random.wrap_key_data(got["rng"]["key"])
  want = jax.random.normal(jax.random.wrap_key_data(state["rng"]["key"]), (3,))
  np.testing.assert_array_equal(jax.random.normal(key, (3,)), want)
  _, got2, _ = ckpt.restore_latest(state)  # concrete arrays as the target work too
  _assert_equal(state, got2)
  ckpt.close()


def test_keep_last_n_and_best(tmp_path):
  val = {1: 3.0, 2: 1.0, 3: 2.0, 4: 2.5, 5: 4.0}
  with checkpoint.Checkpointer(str(tmp_path), keep=2) as ckpt:
    for step, v in val.items():
      ckpt.save(step, _state(step), {"pos": step}, metrics={"val_loss": jnp.float32(v)})
    assert not ckpt.save(5, _state(5))  # repeating a step is a no-op
    ckpt.wait()
    assert _steps(tmp_path) == [2, 4, 5]  # the last two and the best, in one manager
    assert ckpt.best_step() == 2
    abstract = jax.eval_shape(lambda: _state())
    step, got, data = ckpt.restore_best(abstract)
    assert step == 2 and data == {"pos": 2}
    _assert_equal(_state(2), got)
  with checkpoint.Checkpointer(str(tmp_path), keep=2) as ckpt:  # resume: best survives, improves
    ckpt.save(6, _state(6), metrics={"val_loss": 1.5})
    ckpt.save(7, _state(7), metrics={"val_loss": 0.5})
    ckpt.wait()
    assert _steps(tmp_path) == [6, 7] and ckpt.best_step() == 7


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax's asyncio
@pytest.mark.parametrize("corruption", ["truncate", "delete"])
def test_corrupt_newest_falls_back(tmp_path, caplog, corruption):
  with checkpoint.Checkpointer(str(tmp_path), keep=3) as ckpt:
    for step in (1, 2, 3):
      ckpt.save(step, _state(step), {"pos": step})
  newest = tmp_path / "3"
  files = [p for p in (newest / "train").rglob("*") if p.is_file() and p.parent.name == "d"]
  for f in files:
    if corruption == "truncate":
      f.write_bytes(f.read_bytes()[:7])
    else:
      f.unlink()
  with checkpoint.Checkpointer(str(tmp_path), keep=3) as ckpt:
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
      step, got, data = ckpt.restore_latest(jax.eval_shape(lambda: _state()))
    assert step == 2 and data == {"pos": 2}
    _assert_equal(_state(2), got)
    assert any(
      "step 3" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records
    )
    assert _steps(tmp_path) == [1, 2]  # step 3 moved to corrupt/
    assert len(os.listdir(tmp_path / "corrupt")) == 1
    assert ckpt.save(3, _state(3))  # training can checkpoint step 3 again


def test_wrong_abstract_state_raises_instead_of_starting_fresh(tmp_path):
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save(1, {"state": {"w": jnp.ones((2, 3))}})
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    with pytest.raises(RuntimeError, match="could be restored"):
      ckpt.restore_latest(
        {
          "state": {
            "w": jax.ShapeDtypeStruct((2, 3), jnp.float32),
            "extra": jax.ShapeDtypeStruct((1,), jnp.float32),
          }
        }
      )
  assert _steps(tmp_path) == [1]  # nothing moved aside


def test_one_item_is_restored_alone(tmp_path):
  """Inference reads the parameters without building the optimizer state."""
  state = _state(4)
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save(4, {"params": state["train"].params, "rest": state["lstm"]}, {"pos": 4})
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    step, got, data = ckpt.restore_latest({"params": jax.eval_shape(lambda: state["train"].params)})
  assert step == 4 and list(got) == ["params"] and data == {"pos": 4}
  _assert_equal(state["train"].params, got["params"])


def test_another_process_count_is_refused_not_quarantined(tmp_path):
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save(2, {"state": {"w": jnp.ones(3)}}, {"pos": 2})
  data = tmp_path / "2" / "data"
  (data / "process_0-of-1.json").rename(data / "process_0-of-2.json")
  with checkpoint.Checkpointer(str(tmp_path)) as ckpt:
    with pytest.raises(ValueError, match="same number of processes"):
      ckpt.restore_latest({"state": {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}})
    step, _, data_state = ckpt.restore_latest(
      {"state": {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}}, data=False
    )
  assert step == 2 and data_state is None and _steps(tmp_path) == [2]


def test_old_layout_is_refused_with_the_fix(tmp_path):
  (tmp_path / "latest" / "5").mkdir(parents=True)
  with pytest.raises(ValueError, match="new workdir"):
    checkpoint.Checkpointer(str(tmp_path))


@pytest.fixture
def sigint_default():
  """Python's own SIGINT handler for the test, whatever the process started with (a background
  job of a non-interactive shell starts with SIGINT ignored)."""
  before = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, before)


def test_preemption_guard_turns_sigterm_into_flag(sigint_default):
  before = signal.getsignal(signal.SIGTERM)
  with checkpoint.PreemptionGuard() as guard:
    assert not guard.requested
    os.kill(os.getpid(), signal.SIGTERM)
    assert guard.requested and guard.signal_name == "SIGTERM"
  assert signal.getsignal(signal.SIGTERM) is before
  with checkpoint.PreemptionGuard() as guard:
    signal.raise_signal(signal.SIGINT)
    assert guard.requested and guard.signal_name == "SIGINT"
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_sigint_aborts(sigint_default):
  with pytest.raises(KeyboardInterrupt):
    with checkpoint.PreemptionGuard() as guard:
      signal.raise_signal(signal.SIGINT)
      assert guard.requested
      signal.raise_signal(signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
