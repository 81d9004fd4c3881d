"""Causal pre-norm Transformer baseline; layers are stacked and run by `lax.scan`.

True depth O(L): every position sees the whole prefix through L attention layers.
Positions (cfg.pos_encoding): 'rope' rotates q and k (RoPE); 'none' gives none, so causal
attention alone orders the tokens (each position sees its own token and the multiset of its
prefix); 'alibi' adds ALiBi's per-head linear distance penalty -m_a |i - j| to the attention
logits, slopes m_a = 2^(-8a/A) (Press et al., 2022).

Shape letters here (the core's otherwise, rcfam_jax/__init__.py): T tokens (queries and keys),
D model width (d_model), A heads, P head width (D / A), F rotary frequencies (P / 2); L counts
layers.
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


def alibi_slopes(n_head: int):
  """ALiBi's slope per head, m_a = 2^(-8a/A) for a = 1..A (the geometric sequence for any A)."""
  return 2.0 ** (-8.0 * jnp.arange(1, n_head + 1, dtype=jnp.float32) / n_head)


def alibi_bias(t: int, n_head: int):
  """(A, T, T) float32 logit biases -m_a |i - j| for query i, key j (causal masking drops j > i)."""
  pos_T = jnp.arange(t, dtype=jnp.float32)
  dist_TxT = jnp.abs(pos_T[:, None] - pos_T[None, :])
  return -alibi_slopes(n_head)[:, None, None] * dist_TxT[None]


# cuDNN's flash attention refuses some row lengths (in training on jax 0.11, odd ones, e.g. the
# maze's fixed L=145); rows are padded to a multiple of this for attention_impl='cudnn'.
CUDNN_PAD = 64


def attention_impl(cfg: ModelConfig, dtype) -> str:
  """cfg.attention_impl, with 'auto' resolved: cuDNN's flash attention on a GPU in bfloat16 or
  float16 (the only dtypes it takes), XLA's otherwise."""
  if cfg.attention_impl != "auto":
    return cfg.attention_impl
  half = jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16)
  return "cudnn" if half and jax.default_backend() == "gpu" else "xla"


def attend(q_BxTxAxP, k_BxTxAxP, v_BxTxAxP, cfg: ModelConfig, pad: int | None = None):
  """Causal attention (attention_impl(cfg)), the rows padded at their end to a multiple of `pad`
  (default CUDNN_PAD for cuDNN, else 1) and cut back: position t sees only keys <= t, so the
  padding changes no output. 'rope' and 'none' pass no bias; 'alibi' a (1, A, T, T) one, added
  to the scaled logits before the causal mask."""
  t, n = q_BxTxAxP.shape[1], cfg.n_head
  impl = attention_impl(cfg, q_BxTxAxP.dtype)
  pad = pad or (CUDNN_PAD if impl == "cudnn" else 1)
  tp = -(-t // pad) * pad
  q, k, v = (
    jnp.pad(x, ((0, 0), (0, tp - t), (0, 0), (0, 0))) for x in (q_BxTxAxP, k_BxTxAxP, v_BxTxAxP)
  )
  a = jax.nn.dot_product_attention(
    q,
    k,
    v,
    alibi_bias(tp, n)[None] if cfg.pos_encoding == "alibi" else None,
    is_causal=True,
    implementation=impl,
  )
  return a[:, :t]


def embed(params, tokens_BxT):
  return params["embed"][tokens_BxT]


def apply_embeddings(params, x_BxTxD, cfg: ModelConfig):
  b, t, d = x_BxTxD.shape
  n, dtype, eps = cfg.n_head, jnp.dtype(cfg.compute_dtype), cfg.norm_eps

  def block(x, p):
    h = nn.rms_norm(p["ln1"], x, eps)
    q, k, v = jnp.split(nn.dense(p["qkv"], h, dtype).reshape(b, t, 3 * n, d // n), 3, axis=2)
    if cfg.pos_encoding == "rope":
      q, k = rope(q, cfg.rope_base), rope(k, cfg.rope_base)
    a = attend(q.astype(dtype), k.astype(dtype), v.astype(dtype), cfg)
    x = x + nn.dense(p["out"], a.reshape(b, t, d), dtype)
    h = nn.rms_norm(p["ln2"], x, eps)
    return x + nn.dense(p["fc2"], nn.gelu(nn.dense(p["fc1"], h, dtype)), dtype), None

  x, _ = jax.lax.scan(block, x_BxTxD.astype(jnp.float32), params["layers"])
  return nn.dense(params["head"], nn.rms_norm(params["ln_f"], x, eps), dtype)


def apply(params, tokens_BxT, cfg: ModelConfig):
  """(B, T) int ids -> (B, T, output_size) float32 logits; position t sees tokens <= t."""
  return apply_embeddings(params, embed(params, tokens_BxT), cfg)
