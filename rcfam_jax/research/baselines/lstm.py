"""LSTM baseline: embedding -> `rcfam_jax.lstm` residual stack (time-major scan) -> linear head.

True depth Theta(T): the recurrent state is updated once per token.

Shape letters here (the core's otherwise, rcfam_jax/__init__.py): T tokens, D embedding width
(d_model), H LSTM hidden size (also d_model).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rcfam_jax import lstm as core_lstm
from rcfam_jax import nn
from rcfam_jax.research.baselines.config import ModelConfig


def init(key, cfg: ModelConfig):
  d = cfg.d_model
  k_emb, k_lstm, k_head = jax.random.split(key, 3)
  return {
    "embed": jax.random.normal(k_emb, (cfg.vocab_size, d), jnp.float32),
    "lstm": core_lstm.init(k_lstm, d, d, cfg.layers, forget_bias=cfg.forget_bias),
    "head": nn.dense_init(k_head, d, cfg.output_size),
  }


def embed(params, tokens_BxT):
  return params["embed"][tokens_BxT]


def apply_embeddings(params, x_BxTxD, cfg: ModelConfig):
  dtype = jnp.dtype(cfg.compute_dtype)
  state = core_lstm.initial_state(params["lstm"], x_BxTxD.shape[0])
  y_TxBxH, _ = core_lstm.apply(
    params["lstm"],
    jnp.swapaxes(x_BxTxD, 0, 1),
    state,
    dtype=dtype,
    unroll=cfg.unroll,
    impl=cfg.lstm_impl,
  )
  return nn.dense(params["head"], jnp.swapaxes(y_TxBxH, 0, 1), dtype)


def apply(params, tokens_BxT, cfg: ModelConfig):
  """(B, T) int ids -> (B, T, output_size) float32 logits."""
  return apply_embeddings(params, embed(params, tokens_BxT), cfg)
