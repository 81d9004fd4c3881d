"""The fused persistent LSTM kernel against the lax.scan path (GPU), and its CPU behaviour.

The kernel tests need an NVIDIA GPU and nvcc; CI (CPU) runs the error paths and the custom VJP
with the kernels' lax.scan references in their place.
On a GPU machine: python -m pytest -q tests/lstm_fused_test.py
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import lstm, lstm_fused, model
from rcfam_jax.config import ExecConfig

OK, WHY = lstm_fused.available()
OK_IMPLS = ("scan", "fused") if OK else ("scan",)
gpu_only = pytest.mark.skipif(not OK, reason=f"fused kernel unavailable: {WHY[:120]}")


def _problem(t, b, d, h, layers, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 8)
  params = lstm.init(k[0], d, h, layers, forget_bias=1.0)
  params["h0"] = jax.random.normal(k[1], params["h0"].shape) * 0.5
  params["c0"] = jax.random.normal(k[2], params["c0"].shape) * 0.5
  x = jax.random.normal(k[3], (t, b, d))
  state = lstm.State(
    jax.random.normal(k[4], (layers, b, h)) * 0.5, jax.random.normal(k[5], (layers, b, h)) * 0.5
  )
  reset = (jax.random.uniform(k[6], (t, b)) < 0.1).at[0, 0].set(True)  # also the first step
  cts = [
    jax.random.normal(kk, s)
    for kk, s in zip(jax.random.split(k[7], 3), [(t, b, h), (layers, b, h), (layers, b, h)])
  ]
  return params, x, state, reset, cts


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-30)


@gpu_only
@pytest.mark.parametrize("t,b,h,layers", [(37, 5, 64, 2), (9, 20, 96, 1), (1, 16, 32, 1)])
def test_fused_matches_scan_values_and_gradients(t, b, h, layers):
  """Same outputs, final state and gradients (params, inputs, carried state) within bf16."""
  params, x, state, reset, (dy, dh, dc) = _problem(t, b, 48, h, layers)

  def loss(p, x, s, impl):
    y, new = lstm.apply(p, x, s, reset, dtype=jnp.bfloat16, unroll=4, impl=impl)
    return jnp.vdot(y, dy) + jnp.vdot(new.h, dh) + jnp.vdot(new.c, dc), (y, new)

  grads = {}
  for impl in ("scan", "fused"):
    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3)
    grads[impl] = f(params, x, state, impl)
  (_, (y_s, st_s)), g_s = grads["scan"]
  (_, (y_f, st_f)), g_f = grads["fused"]
  assert _rel(y_f, y_s) < 1e-2
  assert _rel(st_f.h, st_s.h) < 1e-2 and _rel(st_f.c, st_s.c) < 1e-2
  for path, a, b_ in zip(
    jax.tree_util.tree_leaves_with_path(g_f), jax.tree.leaves(g_f), jax.tree.leaves(g_s)
  ):
    assert np.all(np.isfinite(a)), path[0]
    assert _rel(a, b_) < 3e-2, (jax.tree_util.keystr(path[0]), _rel(a, b_))


@pytest.mark.parametrize("t,b,h,layers", [(37, 5, 64, 2), (1, 16, 32, 1)])
def test_fused_vjp_with_the_kernels_reference_loops_matches_scan(t, b, h, layers, monkeypatch):
  """Everything around the kernels (custom VJP, gate pre-activations, weight gradient, resets,
  B padding) on any backend: the two kernel calls replaced by their lax.scan references."""
  monkeypatch.setattr(lstm_fused, "_register", lambda: None)
  monkeypatch.setattr(lstm_fused, "_forward", lstm_fused.forward_reference)
  monkeypatch.setattr(lstm_fused, "_backward", lstm_fused.backward_reference)
  params, x, state, reset, (dy, dh, dc) = _problem(t, b, 48, h, layers)

  def loss(p, x, s, impl):
    y, new = lstm.apply(p, x, s, reset, dtype=jnp.bfloat16, unroll=4, impl=impl)
    return jnp.vdot(y, dy) + jnp.vdot(new.h, dh) + jnp.vdot(new.c, dc)

  f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), static_argnums=3)
  (l_s, g_s), (l_f, g_f) = f(params, x, state, "scan"), f(params, x, state, "fused")
  assert abs(float(l_f) - float(l_s)) < 1e-2 * abs(float(l_s))
  for path, a, b_ in zip(
    jax.tree_util.tree_leaves_with_path(g_f), jax.tree.leaves(g_f), jax.tree.leaves(g_s)
  ):
    assert _rel(a, b_) < 3e-2, (jax.tree_util.keystr(path[0]), _rel(a, b_))


@gpu_only
def test_kernels_match_their_reference_loops():
  """Each kernel against its lax.scan reference (same algorithm and bf16 roundings)."""
  t, b, h = 37, 16, 64
  k = jax.random.split(jax.random.PRNGKey(3), 10)
  w = (jax.random.normal(k[0], (h, 4 * h)) / 8).astype(jnp.bfloat16)
  gx = jax.random.normal(k[1], (t, b, 4 * h))
  h0, c0 = jax.random.normal(k[2], (h,)), jax.random.normal(k[3], (h,))
  hi, ci = jax.random.normal(k[4], (b, h)), jax.random.normal(k[5], (b, h))
  reset = (jax.random.uniform(k[6], (t, b)) < 0.1).astype(jnp.uint8)
  fwd = [
    jax.jit(f)(gx, w, h0, c0, hi, ci, reset)
    for f in (lstm_fused._forward, lstm_fused.forward_reference)
  ]
  for a, b_ in zip(*fwd):
    assert _rel(a.astype(jnp.float32), b_.astype(jnp.float32)) < 1e-2
  y, c_seq, hp = fwd[1]
  pre = gx + jnp.matmul(hp, w, preferred_element_type=jnp.float32)
  cp = jnp.where(reset[..., None] > 0, c0, jnp.concatenate([ci[None], c_seq[:-1]]))
  args = (
    pre,
    c_seq,
    cp,
    jax.random.normal(k[7], (t, b, h)),
    jax.random.normal(k[8], (b, h)),
    jax.random.normal(k[9], (b, h)),
    reset,
    w,
  )
  bwd = [jax.jit(f)(*args) for f in (lstm_fused._backward, lstm_fused.backward_reference)]
  for a, b_ in zip(*bwd):
    assert _rel(a.astype(jnp.float32), b_.astype(jnp.float32)) < 1e-2


@gpu_only
def test_fused_model_loss_matches_scan():
  """The whole model (frame head + fused LSTM + head) gives the scan path's loss and grads."""
  from conftest import TINY, random_batch

  from rcfam_jax import bptt

  cfg = dataclasses.replace(TINY, lstm_hidden=32, compute_dtype="bfloat16")
  params = model.init(jax.random.PRNGKey(0), cfg)
  batch = random_batch(jax.random.PRNGKey(1), cfg, 3, 12, resets=True)
  out = {}
  for impl in ("scan", "fused"):
    ex = ExecConfig(head_chunk=4, lstm_impl=impl)
    f = jax.jit(
      jax.value_and_grad(
        lambda p, ex=ex: bptt.sequence_loss(p, batch, model.initial_state(p, 3), cfg=cfg, ex=ex)[0]
      )
    )
    out[impl] = f(params)
  assert abs(float(out["fused"][0]) - float(out["scan"][0])) < 1e-2 * abs(float(out["scan"][0]))
  for a, b in zip(jax.tree.leaves(out["fused"][1]), jax.tree.leaves(out["scan"][1])):
    assert _rel(a, b) < 5e-2


@pytest.mark.skipif(OK, reason="a GPU is present: the kernel is available")
def test_fused_without_gpu_says_what_to_do():
  assert "scan" in WHY
  params, x, state, reset, _ = _problem(4, 2, 8, 32, 1)
  with pytest.raises(lstm_fused.Unavailable, match="lstm_impl='scan'"):
    lstm.apply(params, x, state, reset, impl="fused")


def test_config_rejects_unknown_lstm_impl():
  with pytest.raises(ValueError, match="lstm_impl"):
    ExecConfig(lstm_impl="cudnn")


def test_baseline_lstm_takes_the_fused_kernel():
  """The depth benchmark's LSTM baseline runs either implementation (`lstm_impl`); on a GPU
  the two give the same logits within the kernel's bf16 recurrent matmul."""
  from rcfam_jax.research import baselines

  with pytest.raises(ValueError, match="lstm_impl='cudnn' is not one of scan|fused"):
    baselines.ModelConfig("lstm", 11, 5, lstm_impl="cudnn")
  cfgs = {i: baselines.ModelConfig("lstm", 11, 5, d_model=32, lstm_impl=i) for i in OK_IMPLS}
  params = baselines.init(jax.random.PRNGKey(0), cfgs["scan"])
  tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 12), 0, 11)
  out = {i: baselines.apply(params, tokens, c) for i, c in cfgs.items()}
  if "fused" in out:
    assert _rel(out["fused"], out["scan"]) < 5e-2
  else:
    with pytest.raises(lstm_fused.Unavailable):
      baselines.apply(params, tokens, baselines.ModelConfig("lstm", 11, 5, lstm_impl="fused"))
