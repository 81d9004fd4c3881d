"""The LSTM stack against two oracles: flax's OptimizedLSTMCell and a float64 NumPy loop."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import lstm

GATES = "ifgo"


def numpy_stack(params, x_TxBxD, h_LxBxH, c_LxBxH, reset_TxB):
  """Float64 reference with the same residual and reset semantics."""
  sig = lambda z: 1.0 / (1.0 + np.exp(-z))
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  y = np.asarray(x_TxBxD, np.float64)
  h_all, c_all = np.array(h_LxBxH, np.float64), np.array(c_LxBxH, np.float64)
  for layer, p in enumerate(p64["layers"]):
    h, c, outs = h_all[layer], c_all[layer], []
    for t in range(y.shape[0]):
      r = np.asarray(reset_TxB[t])[:, None]
      h, c = np.where(r, p64["h0"][layer], h), np.where(r, p64["c0"][layer], c)
      i, f, g, o = np.split(y[t] @ p["w_x"] + h @ p["w_h"] + p["b"], 4, axis=-1)
      c = sig(f) * c + sig(i) * np.tanh(g)
      h = sig(o) * np.tanh(c)
      outs.append(h)
    out = np.stack(outs)
    y = out if layer == 0 else y + out
    h_all[layer], c_all[layer] = h, c
  return y, h_all, c_all


@pytest.mark.parametrize("remat", ["none", "step", "nested"])
def test_stack_matches_float64_numpy(remat):
  t, b, d, h, layers = 11, 3, 5, 6, 3
  k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
  params = lstm.init(k1, d, h, layers, forget_bias=1.0)
  params["h0"] = jax.random.normal(k3, params["h0"].shape) * 0.5
  params["c0"] = jax.random.normal(k4, params["c0"].shape) * 0.5
  x = jax.random.normal(k2, (t, b, d))
  reset = np.zeros((t, b), bool)
  reset[4, 1] = reset[7, 0] = True
  state = lstm.State(jnp.full((layers, b, h), 0.1), jnp.full((layers, b, h), -0.1))
  y, new = lstm.apply(params, x, state, jnp.asarray(reset), unroll=3, remat=remat, interval=4)
  y_ref, h_ref, c_ref = numpy_stack(params, x, state.h, state.c, reset)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.h, h_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new.c, c_ref, rtol=1e-5, atol=1e-6)


def test_forget_bias_is_added_to_forget_gate_only():
  p0 = lstm.init(jax.random.PRNGKey(0), 4, 8, 1)
  p1 = lstm.init(jax.random.PRNGKey(0), 4, 8, 1, forget_bias=1.0)
  diff = np.asarray(p1["layers"][0]["b"] - p0["layers"][0]["b"])
  np.testing.assert_allclose(diff, np.repeat([0.0, 1.0, 0.0, 0.0], 8), atol=1e-6)


def test_cell_matches_flax_optimized_lstm_cell():
  d, h, b, t = 5, 7, 4, 6
  ours = lstm.init(jax.random.PRNGKey(1), d, h, 1)
  p = ours["layers"][0]
  w_x, w_h, bias = (np.split(np.asarray(a), 4, axis=-1) for a in (p["w_x"], p["w_h"], p["b"]))
  flax_params = {"params": {}}
  for k, gate in enumerate(GATES):
    flax_params["params"]["i" + gate] = {"kernel": w_x[k]}
    flax_params["params"]["h" + gate] = {"kernel": w_h[k], "bias": bias[k]}
  cell = fnn.OptimizedLSTMCell(features=h)
  # Check our mapping covers flax's parameter tree exactly.
  ref_tree = cell.init(
    jax.random.PRNGKey(0), (jnp.zeros((b, h)), jnp.zeros((b, h))), jnp.zeros((b, d))
  )
  assert jax.tree.structure(ref_tree) == jax.tree.structure(flax_params)
  x = jax.random.normal(jax.random.PRNGKey(2), (t, b, d))
  carry, outs = (jnp.zeros((b, h)), jnp.zeros((b, h))), []
  for i in range(t):
    carry, out = cell.apply(flax_params, carry, x[i])
    outs.append(out)
  y, state = lstm.apply(ours, x, lstm.initial_state(ours, b))
  np.testing.assert_allclose(y, jnp.stack(outs), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(state.c[0], carry[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(state.h[0], carry[1], rtol=1e-5, atol=1e-6)


def test_bf16_matmuls_stay_close_to_fp32():
  params = lstm.init(jax.random.PRNGKey(0), 16, 32, 2)
  x = jax.random.normal(jax.random.PRNGKey(1), (20, 4, 16))
  s = lstm.initial_state(params, 4)
  y32, _ = lstm.apply(params, x, s)
  y16, st16 = lstm.apply(params, x, s, dtype=jnp.bfloat16, unroll=8)
  assert y16.dtype == jnp.float32 and st16.c.dtype == jnp.float32
  np.testing.assert_allclose(y16, y32, atol=3e-2)


def test_bf16_recurrent_weight_gradient_sums_in_fp32():
  """Over many steps W_h's bf16-path gradient stays as close to the fp32 one as W_x's (one
  GEMM over all T): its per-step terms accumulate in fp32, not in a bf16 carry (whose rounding error
  grows with T)."""
  b, h, t = 4, 32, 1024
  params = lstm.init(jax.random.PRNGKey(0), h, h, 1)
  x = jax.random.normal(jax.random.PRNGKey(1), (t, b, h))
  ct = jax.random.normal(jax.random.PRNGKey(2), (t, b, h))
  s = lstm.initial_state(params, b)

  def grads(dtype):
    loss = lambda p: jnp.sum(lstm.apply(p, x, s, dtype=dtype, unroll=8)[0] * ct)
    return jax.jit(jax.grad(loss))(params)["layers"][0]

  g32, g16 = grads(jnp.float32), grads(jnp.bfloat16)
  err = {
    k: float(jnp.linalg.norm(g16[k] - g32[k]) / jnp.linalg.norm(g32[k])) for k in ("w_x", "w_h")
  }
  assert err["w_h"] < 2 * err["w_x"] + 1e-3, err
