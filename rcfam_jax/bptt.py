"""Memory-bounded BPTT: the training loss whose gradient needs device memory flat in T.

The JAX counterpart of the author's streaming scheme (docs/DESIGN.md, "Memory-bounded BPTT"),
run as ExecConfig says:
  1. the frame head runs over chunks of `head_chunk` time steps under `jax.checkpoint`, so the
     backward pass keeps only the d-vector per frame and recomputes each chunk's activations
     (head forward twice + backward once, exactly the author's cost);
  2. the LSTM stack scans over the embeddings, keeping per-step residuals, only carries
     ('step'), or carries every `recompute_interval` steps ('nested');
  3. logits and cross-entropy are computed `loss_chunk` steps at a time under checkpoint, so
     the (T, B, V) logits never exist.
Gradients are exact: they equal plain backprop (`plain_loss`) up to float rounding.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from rcfam_jax import losses, model, sharding
from rcfam_jax.config import ExecConfig, ModelConfig
from rcfam_jax.scan import blocked_scan


def _resets_TxB(batch, b, t):
  r = batch.get("reset")
  return jnp.zeros((t, b), bool) if r is None else jnp.asarray(r, bool).T


def _masked(loss_BxT, batch, new_state, hits=None):
  valid_BxT = batch.get("valid")
  valid_BxT = jnp.ones(loss_BxT.shape, bool) if valid_BxT is None else valid_BxT
  loss_BxT = jnp.where(valid_BxT, loss_BxT, 0.0)
  aux = {
    "loss_BxT": loss_BxT,
    "valid_BxT": valid_BxT,
    "state": jax.tree.map(jax.lax.stop_gradient, new_state),
  }
  if hits is not None:  # (top-1, top-k) hits, (T, B) each
    aux["top1_BxT"], aux["topk_BxT"] = (h.T & valid_BxT for h in hits)
  return losses.masked_mean(loss_BxT, valid_BxT), aux


def host_sharding(device=None):
  """Pinned host memory of `device` (default: the first): where frames_on_host keeps frames."""
  return jax.sharding.SingleDeviceSharding(device or jax.devices()[0], memory_kind="pinned_host")


def frames_to_host(batch: dict, device=None) -> dict:
  """The batch with its frames in pinned host memory, for ExecConfig(frames_on_host=True)."""
  return {**batch, "frames": jax.device_put(batch["frames"], host_sharding(device))}


def _backbone_loss(
  params,
  emb_TxBxD,
  state,
  resets_TxB,
  actions_TxB,
  *,
  cfg: ModelConfig,
  ex: ExecConfig,
  topk: int = 0,
):
  """LSTM stack + chunked cross-entropy -> (loss_TxB, new_state, hits).

  topk > 0 also returns the (top-1, top-k) hits of the actions, (T, B) bool each; else None.
  """
  y_TxBxH, new_state = model.backbone(params, emb_TxBxD, state, resets_TxB, cfg=cfg, ex=ex)

  def loss_block(carry, xs):
    y_KxBxH, a_KxB = xs
    logits = model.logits(params, y_KxBxH)
    out = losses.cross_entropy(logits, a_KxB)
    if topk:
      hit_KxBxk = jax.lax.top_k(logits, min(topk, cfg.vocab_size))[1] == a_KxB[..., None]
      out = (out, (hit_KxBxk[..., 0], jnp.any(hit_KxBxk, -1)))
    return carry, out

  _, out = blocked_scan(loss_block, (), (y_TxBxH, actions_TxB), ex.loss_chunk, checkpoint=True)
  loss_TxB, hits = out if topk else (out, None)
  return loss_TxB, new_state, hits


def sequence_loss(
  params,
  batch,
  state: model.State | None,
  *,
  cfg: ModelConfig,
  ex: ExecConfig,
  mesh=None,
  topk: int = 0,
):
  """Mean cross-entropy over valid positions of one window.

  batch: frames (B,T,rows,cols,7) int, actions (B,T) int, optional valid (B,T) bool and
  reset (B,T) bool. state: the recurrent state to start from (carried, no gradient), or None to
  start from the learned (h0, c0), which then get the gradient (a fresh window). Returns
  (loss, aux) with aux = {loss_BxT, valid_BxT, state} where `state` is the final recurrent state
  (gradient stopped), to carry into the next window.
  mesh: a ("data", "fsdp") mesh of several devices: the frame head runs over all of them and
  the LSTM data-parallel, with no collective inside a time loop (sharding.py); None: as is.
  topk > 0 (evaluation): aux also holds top1_BxT and topk_BxT, the valid positions whose action
  is the most likely one or among the `topk` most likely.
  """
  frames, actions = batch["frames"], batch["actions"]
  b, t = actions.shape
  if state is None:
    state = model.initial_state(params, b)
  embed_fn = functools.partial(model.embed, cfg=cfg, ex=ex)
  tail_fn = functools.partial(_backbone_loss, cfg=cfg, ex=ex, topk=topk)
  head_p = {"frame_head": params["frame_head"]}
  tail_p = {k: v for k, v in params.items() if k != "frame_head"}
  if mesh is not None:
    embed_fn = sharding.frame_parallel(embed_fn, mesh)
    tail_fn = sharding.batch_parallel(tail_fn, mesh, n_args=4)
  emb_TxBxD = embed_fn(head_p, frames)
  loss_TxB, new_state, hits = tail_fn(tail_p, emb_TxBxD, state, _resets_TxB(batch, b, t), actions.T)
  return _masked(loss_TxB.T, batch, new_state, hits)


def plain_loss(
  params, batch, state: model.State, *, cfg: ModelConfig, ex: ExecConfig = ExecConfig()
):
  """The same loss through `model.apply` with no chunking or remat: the reference backprop
  (of `ex`, only the kernels are used)."""
  ex = dataclasses.replace(
    ex,
    head_chunk=batch["actions"].shape[1],
    head_remat="none",
    layer_remat=False,
    lstm_remat="none",
    frames_on_host=False,
  )
  logits_BxTxV, new_state = model.apply(
    params, batch["frames"], state, batch.get("reset"), cfg=cfg, ex=ex
  )
  return _masked(losses.cross_entropy(logits_BxTxV, batch["actions"]), batch, new_state)


def loss_and_grad(params, batch, state, *, cfg: ModelConfig, ex: ExecConfig, mesh=None):
  """((loss, aux), grads) of `sequence_loss`."""
  return jax.value_and_grad(sequence_loss, has_aux=True)(
    params, batch, state, cfg=cfg, ex=ex, mesh=mesh
  )
