"""Mamba-2 SSD: the chunked form equals the sequential recurrence it stands for."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax.research.baselines import mamba

# float32 tolerances set on a CPU: full-precision matmuls on a GPU too (conftest)
pytestmark = pytest.mark.usefixtures("full_float32_matmuls")


def ssd_sequential(x_BxTxHxP, a_BxTxH, b_BxTxN, c_BxTxN):
  """S_t = exp(a_t) S_{t-1} + x_t b_t^T;  y_t = S_t c_t  (per head)."""
  bsz, _, h, p = x_BxTxHxP.shape
  n = b_BxTxN.shape[-1]

  def step(s, inp):
    x, a, b, c = inp
    s = jnp.exp(a)[:, :, None, None] * s + x[..., None] * b[:, None, None, :]
    return s, jnp.einsum("bhpn,bn->bhp", s, c)

  tm = lambda z: jnp.swapaxes(z, 0, 1)
  _, y = jax.lax.scan(
    step, jnp.zeros((bsz, h, p, n)), (tm(x_BxTxHxP), tm(a_BxTxH), tm(b_BxTxN), tm(c_BxTxN))
  )
  return tm(y)


@pytest.mark.parametrize("t,chunk", [(1, 4), (37, 8), (20, 1)])
def test_ssd_matches_sequential(t, chunk):
  k = jax.random.split(jax.random.PRNGKey(t), 4)
  x = jax.random.normal(k[0], (2, t, 3, 4))
  a = -2.0 * jax.random.uniform(k[1], (2, t, 3))
  b, c = jax.random.normal(k[2], (2, t, 5)), jax.random.normal(k[3], (2, t, 5))
  got = jax.jit(mamba.ssd, static_argnums=4)(x, a, b, c, chunk)
  np.testing.assert_allclose(got, jax.jit(ssd_sequential)(x, a, b, c), atol=2e-5, rtol=2e-5)


def test_ssd_gradients_finite_and_match():
  k = jax.random.split(jax.random.PRNGKey(0), 4)
  x = jax.random.normal(k[0], (1, 12, 2, 3))
  a = -jax.random.uniform(k[1], (1, 12, 2))
  b, c = jax.random.normal(k[2], (1, 12, 4)), jax.random.normal(k[3], (1, 12, 4))
  f = lambda fn: jax.grad(lambda x, a: jnp.sum(jnp.sin(fn(x, a))), argnums=(0, 1))
  g_chunk = jax.jit(f(lambda x, a: mamba.ssd(x, a, b, c, 4)))(x, a)
  g_seq = jax.jit(f(lambda x, a: ssd_sequential(x, a, b, c)))(x, a)
  for gc, gs in zip(g_chunk, g_seq):
    assert np.isfinite(gc).all()
    np.testing.assert_allclose(gc, gs, atol=1e-4, rtol=1e-4)


def test_segsum_and_causal_conv():
  s = mamba.segsum(jnp.array([1.0, 2.0, 3.0]))
  np.testing.assert_allclose(s, [[0, -np.inf, -np.inf], [2, 0, -np.inf], [5, 3, 0]])
  w = jnp.array([[1.0], [10.0], [100.0]])
  x = jnp.arange(1.0, 6.0)[None, :, None]
  np.testing.assert_allclose(
    mamba.causal_conv(w, jnp.zeros(1), x)[0, :, 0], [100, 210, 321, 432, 543]
  )
