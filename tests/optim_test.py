"""Muon follows the author's per-matrix rule; the rest goes to AdamW.

Expected updates are computed here from the author's formula, written in PyTorch's (out, in)
layout as his code and Keller Jordan's Muon do: orthogonalise the (out, in) matrix (convs
flattened to (out, 9 in)) and scale by sqrt(max(1, out / in)).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import model, optim
from rcfam_jax.config import ModelConfig

A, B, C = 3.4445, -4.7750, 2.0315


def newton_schulz(g_OxI):
  """The quintic iteration on a float64 copy, wide orientation, Frobenius-normalised."""
  x = np.asarray(g_OxI, np.float64)
  tall = x.shape[0] > x.shape[1]
  x = x.T if tall else x
  x = x / (np.linalg.norm(x) + 1e-8)
  for _ in range(5):
    s = x @ x.T
    x = A * x + (B * s + C * s @ s) @ x
  return x.T if tall else x


def author_update(g_OxI):
  out, fan_in = g_OxI.shape
  return newton_schulz(g_OxI) * np.sqrt(max(1.0, out / fan_in))


def muon_step(params, grads):
  cfg = optim.OptimConfig(
    name="muon",
    lr=1.0,
    muon_lr=1.0,
    weight_decay=0.0,
    muon_momentum=0.0,
    muon_nesterov=False,
    warmup_steps=0,
    clip_norm=0.0,
  )
  tx = optim.make(cfg, total_steps=10)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)  # one compile, not per op
  return jax.tree.map(lambda u: -np.asarray(u, np.float64), updates)


def test_muon_scales_match_the_author():
  rng = np.random.default_rng(0)
  g = {
    "conv": rng.standard_normal((3, 3, 2, 40)),  # (kh, kw, in, out): out / 9 in = 2.2
    "dense": rng.standard_normal((8, 32)),  # (in, out): 4
    "blocks": {"qkv": {"w": rng.standard_normal((2, 8, 24))}},  # (L, in, out): 3 per layer
    "pos_embed": rng.standard_normal((40, 8)),  # a table (rows, d): 5
  }
  g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), g)
  up = muon_step(jax.tree.map(jnp.zeros_like, g), g)

  conv_OxI = np.asarray(g["conv"]).reshape(18, 40).T  # (out, 9 in); the column order of the
  np.testing.assert_allclose(
    up["conv"].reshape(18, 40).T,
    author_update(conv_OxI),  # flatten
    rtol=2e-3,
    atol=2e-4,
  )  # does not change the orthogonal factor
  np.testing.assert_allclose(
    up["dense"].T, author_update(np.asarray(g["dense"]).T), rtol=2e-3, atol=2e-4
  )
  for layer in range(2):
    w = np.asarray(g["blocks"]["qkv"]["w"][layer])
    np.testing.assert_allclose(
      up["blocks"]["qkv"]["w"][layer].T, author_update(w.T), rtol=2e-3, atol=2e-4
    )
  np.testing.assert_allclose(
    up["pos_embed"], author_update(np.asarray(g["pos_embed"])), rtol=2e-3, atol=2e-4
  )
  # The scales themselves: the update's norm over the unscaled orthogonal factor's.
  for name, g_OxI, scale in (
    ("conv", conv_OxI, np.sqrt(40 / 18)),
    ("dense", np.asarray(g["dense"]).T, 2.0),
    ("pos_embed", np.asarray(g["pos_embed"]), np.sqrt(5)),
  ):
    ratio = np.linalg.norm(up[name]) / np.linalg.norm(newton_schulz(g_OxI))
    assert ratio == pytest.approx(scale, rel=1e-3), name


def test_vectors_colour_and_initial_state_go_to_adamw():
  cfg = ModelConfig(
    rows=8,
    cols=8,
    d_model=16,
    n_layer=1,
    n_head=2,
    lstm_hidden=16,
    vocab_size=32,
    downsample_blocks=1,
  )
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), cfg))
  dims = optim.muon_dims(params)
  adam = {
    jax.tree_util.keystr(p)
    for p, d in jax.tree_util.tree_leaves_with_path(dims, is_leaf=lambda x: x is None)
    if d is None
  }
  assert "['frame_head']['color']" in adam
  assert "['lstm']['h0']" in adam and "['lstm']['c0']" in adam
  assert "['frame_head']['blocks']['norm1']" in adam
  assert "['lstm']['layers'][0]['b']" in adam
  muon = {
    jax.tree_util.keystr(p): d
    for p, d in jax.tree_util.tree_leaves_with_path(
      dims, is_leaf=lambda x: isinstance(x, optim.MuonDimensionNumbers)
    )
  }
  assert muon["['head']['w']"] == optim.DENSE
  assert muon["['frame_head']['cp_embed']"] == optim.TABLE
  assert muon["['frame_head']['down'][0]['conv']"] == optim.CONV
  assert muon["['frame_head']['blocks']['fc']['w']"] == optim.STACKED

  # AdamW's first step is -lr * g / (|g| + eps): the colour matrix gets sign(g), not an
  # orthogonalised matrix.
  g = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), params)
  g["frame_head"]["color"] = -jnp.arange(1.0, 1.0 + 6 * 16).reshape(6, 16)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
  up = muon_step(zeros, g)
  np.testing.assert_allclose(up["frame_head"]["color"], -np.ones((6, 16)), rtol=1e-4)
