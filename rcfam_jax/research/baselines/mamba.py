"""Mamba-2 baseline: selective SSM blocks computed in the chunked SSD form.

Per head h (scalar decay, Mamba-2 style; one group of b/c shared by all heads):
  S_t = exp(dt_t A_h) S_{t-1} + (dt_t x_t) b_t^T,   y_t = S_t c_t + D_h x_t
The SSD form splits T into chunks of `chunk`: quadratic (attention-like) inside a chunk, a short
linear recurrence over chunk states between chunks. True depth O(L log T) at most for L layers:
the update is linear in S, so the whole sequence is a parallel scan.
Block: x += out(RMSNorm(SSD(silu(conv(x_in))) * silu(z))), with [z, x_in, b, c, dt] = in(RMSNorm x).

Shape letters here (the core's otherwise, rcfam_jax/__init__.py): T tokens, D model width
(d_model), H heads, P head width (head_dim), N state size (d_state), K conv width, C conv
channels (inner width + 2N); in `ssd`, Q chunks of W steps (`segsum`: W any last axis). In the
formulas S_t is the state and A_h, D_h are per-head parameters, not shape letters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rcfam_jax import nn
from rcfam_jax.research.baselines.config import ModelConfig


def _dims(cfg: ModelConfig):
  d_inner = cfg.expand * cfg.d_model
  return d_inner, d_inner // cfg.head_dim  # (inner width, heads)


def init(key, cfg: ModelConfig):
  d, n = cfg.d_model, cfg.d_state
  d_inner, heads = _dims(cfg)
  k_emb, k_layers, k_head = jax.random.split(key, 3)

  def layer(k):
    k_in, k_conv, k_dt, k_a, k_out = jax.random.split(k, 5)
    dt = jnp.exp(jax.random.uniform(k_dt, (heads,), jnp.float32, math.log(1e-3), math.log(1e-1)))
    return {
      "norm": jnp.ones(d),
      "in": nn.dense_init(k_in, d, 2 * d_inner + 2 * n + heads, bias=False),
      "conv_w": nn.uniform(
        k_conv, (cfg.conv_width, d_inner + 2 * n), 1.0 / math.sqrt(cfg.conv_width)
      ),
      "conv_b": jnp.zeros(d_inner + 2 * n),
      "dt_bias": dt + jnp.log(-jnp.expm1(-dt)),  # inverse softplus
      "a_log": jnp.log(jax.random.uniform(k_a, (heads,), jnp.float32, 1.0, 16.0)),
      "d_skip": jnp.ones(heads),
      "gate_norm": jnp.ones(d_inner),
      "out": nn.dense_init(k_out, d_inner, d, bias=False),
    }

  return {
    "embed": jax.random.normal(k_emb, (cfg.vocab_size, d), jnp.float32),
    "layers": jax.vmap(layer)(jax.random.split(k_layers, cfg.layers)),
    "norm_f": jnp.ones(d),
    "head": nn.dense_init(k_head, d, cfg.output_size),
  }


def segsum(x_xW):
  """out[..., i, j] = sum_{j < k <= i} x[..., k] for j <= i, -inf above the diagonal.

  As cumsum_i - cumsum_j, the form Mamba-2's chunked GPU kernels use: one cumsum of W, not a
  masked one of W x W per row; x are log decays (<= 0) over one chunk, or over the chunk sums
  of one row, in float32."""
  length = x_xW.shape[-1]
  s = jnp.cumsum(x_xW, axis=-1)
  return jnp.where(
    jnp.tril(jnp.ones((length, length), bool)), s[..., :, None] - s[..., None, :], -jnp.inf
  )


def ssd(x_BxTxHxP, a_BxTxH, b_BxTxN, c_BxTxN, chunk: int):
  """Chunked SSD scan from a zero state; a = dt*A (log decay, <= 0), x already scaled by dt."""
  bsz, t, h, p = x_BxTxHxP.shape
  chunk = min(chunk, t)
  pad = -t % chunk
  padt = lambda z: jnp.pad(z, [(0, 0), (0, pad)] + [(0, 0)] * (z.ndim - 2))
  nc = (t + pad) // chunk
  split = lambda z: padt(z).reshape((bsz, nc, chunk) + z.shape[2:])
  x, b, c = split(x_BxTxHxP), split(b_BxTxN), split(c_BxTxN)  # (B, Q, W, ...)
  a = jnp.moveaxis(split(a_BxTxH), -1, 1)  # (B, H, Q, W)
  a_cum = jnp.cumsum(a, axis=-1)
  # 1. within chunks: y_i = sum_{j<=i} (c_i . b_j) exp(a_cum_i - a_cum_j) x_j
  y_diag = jnp.einsum("bcln,bcsn,bhcls,bcshp->bclhp", c, b, jnp.exp(segsum(a)), x)
  # 2. state at the end of each chunk, from that chunk's inputs alone
  decay = jnp.exp(a_cum[..., -1:] - a_cum)
  states = jnp.einsum("bcln,bhcl,bclhp->bchpn", b, decay, x)
  # 3. recurrence over chunk boundaries (the only sequential part; Q+1 by Q+1 and tiny)
  states = jnp.concatenate([jnp.zeros_like(states[:, :1]), states], axis=1)
  chunk_decay = jnp.exp(segsum(jnp.pad(a_cum[..., -1], [(0, 0), (0, 0), (1, 0)])))
  states = jnp.einsum("bhzc,bchpn->bzhpn", chunk_decay, states)[:, :-1]
  # 4. contribution of the state entering each chunk
  y_off = jnp.einsum("bcln,bchpn,bhcl->bclhp", c, states, jnp.exp(a_cum))
  return (y_diag + y_off).reshape(bsz, nc * chunk, h, p)[:, :t]


def causal_conv(w_KxC, b_C, x_BxTxC):
  """Depthwise causal 1-D convolution of width K."""
  k, t = w_KxC.shape[0], x_BxTxC.shape[1]
  xp = jnp.pad(x_BxTxC, [(0, 0), (k - 1, 0), (0, 0)])
  return sum(w_KxC[i] * xp[:, i : i + t] for i in range(k)) + b_C


def embed(params, tokens_BxT):
  return params["embed"][tokens_BxT]


def apply_embeddings(params, x_BxTxD, cfg: ModelConfig):
  bsz, t, _ = x_BxTxD.shape
  n, p, eps, dtype = cfg.d_state, cfg.head_dim, cfg.norm_eps, jnp.dtype(cfg.compute_dtype)
  d_inner, heads = _dims(cfg)

  def block(x, q):
    zxbcdt = nn.dense(q["in"], nn.rms_norm(q["norm"], x, eps), dtype)
    z, xbc, dt = jnp.split(zxbcdt, [d_inner, 2 * d_inner + 2 * n], axis=-1)
    xbc = jax.nn.silu(causal_conv(q["conv_w"], q["conv_b"], xbc))
    xs, b, c = jnp.split(xbc, [d_inner, d_inner + n], axis=-1)
    dt = jax.nn.softplus(dt + q["dt_bias"])  # (B, T, H)
    xs = xs.reshape(bsz, t, heads, p)
    y = ssd(xs * dt[..., None], -jnp.exp(q["a_log"]) * dt, b, c, cfg.chunk)
    y = (y + q["d_skip"][:, None] * xs).reshape(bsz, t, d_inner)
    y = nn.rms_norm(q["gate_norm"], y * jax.nn.silu(z), eps)
    return x + nn.dense(q["out"], y, dtype), None

  x, _ = jax.lax.scan(block, x_BxTxD.astype(jnp.float32), params["layers"])
  return nn.dense(params["head"], nn.rms_norm(params["norm_f"], x, eps), dtype)


def apply(params, tokens_BxT, cfg: ModelConfig):
  """(B, T) int ids -> (B, T, output_size) float32 logits; position t sees tokens <= t."""
  return apply_embeddings(params, embed(params, tokens_BxT), cfg)
