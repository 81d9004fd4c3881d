"""Window regimes: fresh windows start from the learned (h0, c0); carried state does not."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY as _TINY
from conftest import ex, random_batch

from rcfam_jax import bptt, model, train

TINY = dataclasses.replace(_TINY, n_layer=1, lstm_layers=1)
EX = ex(head_chunk=6, loss_chunk=6)


@pytest.fixture(scope="module")
def setup():
  params = model.init(jax.random.PRNGKey(0), TINY)
  # A learned initial state that is not zero, so that starting from it is visible.
  params["lstm"]["h0"] = 0.5 * jnp.ones_like(params["lstm"]["h0"])
  params["lstm"]["c0"] = -0.7 * jnp.ones_like(params["lstm"]["c0"])
  seq = random_batch(jax.random.PRNGKey(3), TINY, 2, 12)
  seq["valid"] = jnp.ones_like(seq["valid"])
  w1, w2 = ({k: v[:, s] for k, v in seq.items()} for s in (slice(0, 6), slice(6, 12)))
  return params, w1, w2


def _two_windows(params, w1, w2, carry_state):
  tx = optax.sgd(0.0)  # parameters stay put: the second window's loss shows only the state
  state = train.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))
  step = jax.jit(
    functools.partial(train.train_step, cfg=TINY, ex=EX, tx=tx, carry_state=carry_state)
  )
  rnn = model.initial_state(params, 2)
  _, rnn, m1 = step(state, w1, rnn)
  _, _, m2 = step(state, w2, rnn)
  return float(m1["loss"]), float(m2["loss"])


@functools.partial(jax.jit, static_argnames="cfg")
def _loss(params, window, cfg=TINY):
  return bptt.sequence_loss(params, window, model.initial_state(params, 2), cfg=cfg, ex=EX)


def _alone(params, window):
  return float(_loss(params, window)[0])


def test_fresh_windows_equal_each_window_alone(setup):
  params, w1, w2 = setup
  l1, l2 = _two_windows(params, w1, w2, carry_state=False)
  assert l1 == pytest.approx(_alone(params, w1), rel=1e-6)
  assert l2 == pytest.approx(_alone(params, w2), rel=1e-6)


def test_carried_state_continues_the_sequence(setup):
  params, w1, w2 = setup
  l1, l2 = _two_windows(params, w1, w2, carry_state=True)
  assert l1 == pytest.approx(_alone(params, w1), rel=1e-6)
  assert abs(l2 - _alone(params, w2)) > 1e-4
  # ... and equals the second half of the whole sequence run in one window.
  whole = {k: jnp.concatenate([w1[k], w2[k]], 1) for k in w1}
  _, aux = _loss(params, whole)
  assert l2 == pytest.approx(float(jnp.mean(aux["loss_BxT"][:, 6:])), rel=1e-5)


def test_only_fresh_windows_train_the_initial_state(setup):
  params, w1, w2 = setup
  carried = model.initial_state(params, 2)._replace(h=jnp.full((1, 2, 24), 0.1))
  for rnn, expect_grad in ((None, True), (carried, False)):
    _, grads, _, _ = jax.jit(functools.partial(train.loss_and_grad, cfg=TINY, ex=EX))(
      params, w2, rnn
    )
    norm = float(jnp.linalg.norm(grads["lstm"]["h0"]))
    assert (norm > 1e-6) == expect_grad, norm
  np.testing.assert_array_equal(setup[0]["lstm"]["h0"], 0.5)
