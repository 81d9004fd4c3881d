"""Every baseline is causal (gradient test), pads safely, and learns a trivial instance."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rcfam_jax.research import baselines
from rcfam_jax.research.baselines import ModelConfig

CONFIGS = {
  "transformer2": ModelConfig("transformer", 11, 5, d_model=16, layers=2, n_head=2),
  "mamba2": ModelConfig("mamba", 11, 5, d_model=16, layers=2, head_dim=8, d_state=4, chunk=4),
  "lstm1": ModelConfig("lstm", 11, 5, d_model=16, layers=1, unroll=2),
  "lstm2": ModelConfig("lstm", 11, 5, d_model=16, layers=2),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_causal_by_gradient(name):
  cfg = CONFIGS[name]
  mod = baselines.module(cfg)
  params = mod.init(jax.random.PRNGKey(0), cfg)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 10, cfg.d_model))

  @jax.jit
  def grad_at(t):  # d(logits at t) / d(inputs), summed over everything but time
    g = jax.grad(lambda x: jnp.sum(mod.apply_embeddings(params, x, cfg)[:, t]))(x)
    return jnp.sum(jnp.abs(g), axis=(0, 2))

  for t in (0, 3, 9):
    g_T = np.asarray(grad_at(t))
    assert (g_T[t + 1 :] == 0).all(), (t, g_T)
    assert (g_T[: t + 1] > 0).all(), (t, g_T)


@pytest.mark.parametrize("name", ["transformer2", "mamba2", "lstm1"])
def test_shapes_and_right_padding_invariance(name):
  cfg = CONFIGS[name]
  params = baselines.init(jax.random.PRNGKey(0), cfg)
  tokens = jax.random.randint(jax.random.PRNGKey(2), (3, 9), 0, cfg.vocab_size)
  padded = jnp.concatenate([tokens, jnp.full((3, 5), cfg.vocab_size - 1)], axis=1)
  apply = jax.jit(lambda p, x: baselines.apply(p, x, cfg))
  y = apply(params, tokens)
  assert y.shape == (3, 9, cfg.output_size) and y.dtype == jnp.float32
  np.testing.assert_allclose(apply(params, padded)[:, :9], y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["transformer2", "mamba2", "lstm1"])
def test_learns_previous_token(name):
  """Trivial instance: predict the previous token (mod 5); one step of memory."""
  cfg = CONFIGS[name]
  params = baselines.init(jax.random.PRNGKey(0), cfg)
  tx = optax.adam(1e-2)
  opt = tx.init(params)

  def batch(key):
    tokens = jax.random.randint(key, (16, 12), 0, cfg.vocab_size)
    return tokens, jnp.roll(tokens, 1, axis=1) % cfg.output_size

  def loss_fn(p, tokens, targets):
    logits = baselines.apply(p, tokens, cfg)[:, 1:]
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets[:, 1:]).mean()

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(p, s, key):
    g = jax.grad(loss_fn)(p, *batch(key))
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s

  for i in range(120):
    params, opt = step(params, opt, jax.random.PRNGKey(100 + i))
  tokens, targets = batch(jax.random.PRNGKey(7))
  pred = jnp.argmax(jax.jit(lambda p, x: baselines.apply(p, x, cfg))(params, tokens), -1)
  assert float(jnp.mean(pred[:, 1:] == targets[:, 1:])) > 0.95


def test_param_count_and_config_checks():
  cfg = CONFIGS["lstm1"]
  p = baselines.init(jax.random.PRNGKey(0), cfg)
  h, v, o = 16, 11, 5
  assert baselines.param_count(p) == v * h + (h * 4 * h * 2 + 4 * h + 2 * h) + h * o + o
  with pytest.raises(ValueError):
    ModelConfig("rnn", 3, 3)
  with pytest.raises(ValueError):
    ModelConfig("transformer", 3, 3, d_model=10, n_head=4)
  with pytest.raises(ValueError):
    ModelConfig("mamba", 3, 3, d_model=12, head_dim=5)
