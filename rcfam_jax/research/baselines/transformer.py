"""Causal pre-norm Transformer baseline with RoPE; layers are stacked and run by `lax.scan`.

True depth O(L): every position sees the whole prefix through L attention layers.

Shape letters here (the core's otherwise, rcfam_jax/__init__.py): T tokens, D model width
(d_model), A heads, P head width (D / A), F rotary frequencies (P / 2); L counts layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rcfam_jax import nn
from rcfam_jax.research.baselines.config import ModelConfig


def init(key, cfg: ModelConfig):
  d, f = cfg.d_model, cfg.mlp_ratio * cfg.d_model
  k_emb, k_layers, k_head = jax.random.split(key, 3)

  def layer(k):
    k1, k2, k3, k4 = jax.random.split(k, 4)
    return {
      "ln1": jnp.ones(d),
      "qkv": nn.dense_init(k1, d, 3 * d),
      "out": nn.dense_init(k2, d, d),
      "ln2": jnp.ones(d),
      "fc1": nn.dense_init(k3, d, f),
      "fc2": nn.dense_init(k4, f, d),
    }

  return {
    "embed": jax.random.normal(k_emb, (cfg.vocab_size, d), jnp.float32),
    "layers": jax.vmap(layer)(jax.random.split(k_layers, cfg.layers)),
    "ln_f": jnp.ones(d),
    "head": nn.dense_init(k_head, d, cfg.output_size),
  }


def rope(x_BxTxAxP, base: float):
  """Rotary position embedding on the last axis (rotate-half convention)."""
  t, p = x_BxTxAxP.shape[1], x_BxTxAxP.shape[-1]
  freq_F = base ** (-jnp.arange(0, p, 2, dtype=jnp.float32) / p)
  ang_TxF = jnp.arange(t, dtype=jnp.float32)[:, None] * freq_F[None, :]
  cos, sin = jnp.cos(ang_TxF)[None, :, None], jnp.sin(ang_TxF)[None, :, None]
  x1, x2 = jnp.split(x_BxTxAxP.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def embed(params, tokens_BxT):
  return params["embed"][tokens_BxT]


def apply_embeddings(params, x_BxTxD, cfg: ModelConfig):
  b, t, d = x_BxTxD.shape
  n, dtype, eps = cfg.n_head, jnp.dtype(cfg.compute_dtype), cfg.norm_eps

  def block(x, p):
    h = nn.rms_norm(p["ln1"], x, eps)
    q, k, v = jnp.split(nn.dense(p["qkv"], h, dtype).reshape(b, t, 3 * n, d // n), 3, axis=2)
    q, k = rope(q, cfg.rope_base), rope(k, cfg.rope_base)
    a = jax.nn.dot_product_attention(
      q.astype(dtype),
      k.astype(dtype),
      v.astype(dtype),
      is_causal=True,
      implementation=cfg.attention_impl,
    )
    x = x + nn.dense(p["out"], a.reshape(b, t, d), dtype)
    h = nn.rms_norm(p["ln2"], x, eps)
    return x + nn.dense(p["fc2"], nn.gelu(nn.dense(p["fc1"], h, dtype)), dtype), None

  x, _ = jax.lax.scan(block, x_BxTxD.astype(jnp.float32), params["layers"])
  return nn.dense(params["head"], nn.rms_norm(params["ln_f"], x, eps), dtype)


def apply(params, tokens_BxT, cfg: ModelConfig):
  """(B, T) int ids -> (B, T, output_size) float32 logits; position t sees tokens <= t."""
  return apply_embeddings(params, embed(params, tokens_BxT), cfg)
