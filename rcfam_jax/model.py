"""FBAM: frame head -> residual LSTM stack -> linear action head, as pure functions.

  params = model.init(key, cfg)
  state = model.initial_state(params, batch)
  logits_BxTxV, state = model.apply(params, frames_BxTxRxCx7, state, resets_BxT, cfg=cfg)
  logits_BxV, state = model.step(params, frame_BxRxCx7, state, cfg=cfg)   # streaming

T calls of `step` equal one `apply` over T frames. The state is explicit, so a sequence can be
processed in windows (truncated BPTT) or frame by frame. `cfg` (ModelConfig) is the function;
`ex` (ExecConfig, optional everywhere) is how it runs: kernels, chunking and remat.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from rcfam_jax import frame_head, lstm, nn
from rcfam_jax.config import ExecConfig, ModelConfig
from rcfam_jax.lstm import State
from rcfam_jax.scan import blocked_scan

__all__ = [
  "State",
  "init",
  "n_params",
  "initial_state",
  "embed",
  "backbone",
  "logits",
  "apply",
  "step",
]


def init(key, cfg: ModelConfig):
  k_fh, k_lstm, k_head = jax.random.split(key, 3)
  return {
    "frame_head": frame_head.init(k_fh, cfg),
    "lstm": lstm.init(
      k_lstm,
      cfg.d_model,
      cfg.lstm_hidden,
      cfg.lstm_layers,
      forget_bias=cfg.forget_bias,
      biases=cfg.lstm_biases,
    ),
    "head": nn.dense_init(k_head, cfg.lstm_hidden, cfg.vocab_size, bias=False),
  }


def n_params(params) -> int:
  """Number of parameters (elements of every leaf; works on ShapeDtypeStructs too)."""
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


def initial_state(params, batch: int) -> State:
  """The learned initial state (h0, c0) broadcast to `batch` sequences."""
  return lstm.initial_state(params["lstm"], batch)


def embed(params, frames_BxTxRxCx7, cfg: ModelConfig, ex: ExecConfig = ExecConfig()):
  """Frame head over all frames -> emb_TxBxD (time-major) float32.

  ex.head_chunk time steps per frame-head call (head_chunk x B frames). ex.head_remat: 'full'
  checkpoints each chunk, so reverse mode keeps only the d-vectors and recomputes the head;
  'convs' / 'matmuls' also keep the named outputs (frame_head.SAVEABLE); 'none' keeps
  everything. ex.frames_on_host: each chunk's frames are copied to device memory first.
  """
  frame_head.check_frames(frames_BxTxRxCx7, cfg)
  t = frames_BxTxRxCx7.shape[1]

  def block(carry, t_K):
    f = jax.lax.dynamic_slice_in_dim(frames_BxTxRxCx7, t_K[0], t_K.shape[0], axis=1)
    if ex.frames_on_host:
      f = jax.device_put(f, jax.memory.Space.Device)
    e_BxKxD = frame_head.apply(params["frame_head"], f, cfg, ex)
    return carry, e_BxKxD.swapaxes(0, 1)

  keep = frame_head.SAVEABLE.get(ex.head_remat)
  policy = jax.checkpoint_policies.save_only_these_names(*keep) if keep else None
  _, emb_TxBxD = blocked_scan(
    block, (), jnp.arange(t), ex.head_chunk, checkpoint=ex.head_remat != "none", policy=policy
  )
  return emb_TxBxD


def backbone(
  params,
  emb_TxBxD,
  state: State,
  resets_TxB=None,
  *,
  cfg: ModelConfig,
  ex: ExecConfig = ExecConfig(),
):
  """Residual LSTM stack over the embeddings -> (y_TxBxH, new_state). Of `ex`: lstm_impl,
  lstm_unroll, lstm_remat, recompute_interval.

  Named `lstm_time_scan` in the HLO (tests/sharding_test.py finds the serial loops by it).
  """
  with jax.named_scope("lstm_time_scan"):
    return lstm.apply(
      params["lstm"],
      emb_TxBxD,
      state,
      resets_TxB,
      dtype=cfg.compute_dtype,
      unroll=ex.lstm_unroll,
      remat=ex.lstm_remat,
      interval=ex.recompute_interval,
      impl=ex.lstm_impl,
    )


def logits(params, y_xH):
  """Action logits in float32."""
  return nn.dense(params["head"], y_xH, jnp.float32)


def apply(
  params,
  frames_BxTxRxCx7,
  state: State,
  resets_BxT=None,
  *,
  cfg: ModelConfig,
  ex: ExecConfig = ExecConfig(),
):
  """Frames (B, T, rows, cols, 7) -> (logits_BxTxV float32, new_state)."""
  emb_TxBxD = embed(params, frames_BxTxRxCx7, cfg, ex)
  resets_TxB = None if resets_BxT is None else jnp.asarray(resets_BxT, bool).T
  y_TxBxH, state = backbone(params, emb_TxBxD, state, resets_TxB, cfg=cfg, ex=ex)
  return logits(params, y_TxBxH).swapaxes(0, 1), state


def step(
  params,
  frame_BxRxCx7,
  state: State,
  reset_B=None,
  *,
  cfg: ModelConfig,
  ex: ExecConfig = ExecConfig(),
):
  """One frame per sequence -> (logits_BxV, new_state); streaming inference."""
  resets = None if reset_B is None else jnp.asarray(reset_B, bool)[:, None]
  out, state = apply(params, frame_BxRxCx7[:, None], state, resets, cfg=cfg, ex=ex)
  return out[:, 0], state
