"""Pure training and evaluation steps.

`train_step` computes the memory-bounded loss and gradient (optionally over micro-batches,
weighted by their valid positions so the update equals the full-batch one), applies the optimizer
and returns the final recurrent state (gradient stopped). Two window regimes (`carry_state`):
fresh windows, each starting from the learned (h0, c0) as in the author's training, so the
trained length T bounds both the context and the backprop span; or carried state, where each
lane's window starts from the previous window's final state (truncated BPTT: T bounds only the
backprop span). Configs and the optimizer are closed over with functools.partial before
`jax.jit`; nothing here touches the host.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rcfam_jax import bptt as bptt_lib
from rcfam_jax import model
from rcfam_jax.config import ExecConfig, ModelConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 1000
  batch_size: int = 16
  seq_len: int = 512  # trained sequence length (actions per lane per update)
  microbatches: int = 1  # gradient accumulation inside one update
  seed: int = 0
  log_every: int = 10
  eval_every: int = 200
  eval_batches: int = 4
  eval_seq_len: int = 512  # fixed across runs, so runs of any seq_len compare
  eval_batch_size: int = 16
  position_buckets: int = 4  # validation loss by position: early ... late
  ckpt_every: int = 500
  keep_checkpoints: int = 3
  max_minutes: float = 0.0  # wall-clock budget of one invocation (0: none); ends with eval
  eval_at: tuple[int, ...] = ()  # extra evaluation steps (e.g. log-spaced, shared by a sweep)
  carry_state: bool = False  # False: every window starts from the learned (h0, c0) (the
  # author's regime); True: carried across a lane's windows
  init_from: str | None = None  # a new run's parameters: a .safetensors file in the author's
  # format (rcfam_jax.interop) or a workdir's newest; unused when resuming from a checkpoint

  def __post_init__(self):
    for name in (
      "steps",
      "batch_size",
      "seq_len",
      "microbatches",
      "log_every",
      "eval_every",
      "eval_batches",
      "eval_seq_len",
      "eval_batch_size",
      "position_buckets",
      "ckpt_every",
      "keep_checkpoints",
    ):
      if getattr(self, name) < 1:
        raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
    if any(s < 1 for s in self.eval_at):
      raise ValueError(f"train.eval_at steps must be >= 1, got {self.eval_at}")
    if self.max_minutes < 0:
      raise ValueError(f"train.max_minutes must be >= 0 (0 = no limit), got {self.max_minutes}")
    if self.batch_size % self.microbatches:
      raise ValueError(
        f"train.batch_size={self.batch_size} is not divisible by "
        f"train.microbatches={self.microbatches}"
      )


class TrainState(NamedTuple):
  step: jax.Array
  params: Any
  opt_state: Any


def init_train_state(key, cfg: ModelConfig, tx: optax.GradientTransformation) -> TrainState:
  params = model.init(key, cfg)
  return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))


def _summed_loss_and_grad(params, batch, rnn_state, cfg, ex, mesh):
  """Sum (not mean) of the valid positions' losses, its gradient, the final state, the count."""
  (loss, aux), grads = bptt_lib.loss_and_grad(params, batch, rnn_state, cfg=cfg, ex=ex, mesh=mesh)
  n = jnp.sum(aux["valid_BxT"]).astype(jnp.float32)
  return loss * n, jax.tree.map(lambda g: g * n, grads), aux["state"], n


def _split(x, m, axis, strided=False):
  """(..., B, ...) -> (M, ..., B/M, ...) with the micro-batch axis first.

  strided: micro-batch i takes rows i, i+M, ... so that each keeps the batch's device layout.
  """
  n = x.shape[axis] // m
  pair = (n, m) if strided else (m, n)
  x = x.reshape(x.shape[:axis] + pair + x.shape[axis + 1 :])
  return jnp.moveaxis(x, axis + 1 if strided else axis, 0)


def _merge(x, axis, strided=False):
  x = jnp.moveaxis(x, 0, axis + 1 if strided else axis)
  return x.reshape(x.shape[:axis] + (-1,) + x.shape[axis + 2 :])


def loss_and_grad(
  params, batch, rnn_state, *, cfg: ModelConfig, ex: ExecConfig, microbatches: int = 1, mesh=None
):
  """(mean loss, grads, final state, n_valid), accumulated over `microbatches` batch slices.

  rnn_state: None starts every sequence from the learned (h0, c0) (bptt.sequence_loss).
  mesh: several devices -> sharded (see bptt.sequence_loss); micro-batches are then strided.
  """
  strided = mesh is not None
  if microbatches == 1:
    total, grads, state, n = _summed_loss_and_grad(params, batch, rnn_state, cfg, ex, mesh)
  else:
    mbs = jax.tree.map(lambda x: _split(x, microbatches, 0, strided), batch)
    states = jax.tree.map(lambda x: _split(x, microbatches, 1, strided), rnn_state)

    def body(acc, xs):
      mb, st = xs
      loss, g, new_state, n = _summed_loss_and_grad(params, mb, st, cfg, ex, mesh)
      acc = jax.tree.map(jnp.add, acc, (loss, g, n))
      return acc, new_state

    zeros = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, params), jnp.zeros(()))
    (total, grads, n), states = jax.lax.scan(body, zeros, (mbs, states))
    state = jax.tree.map(lambda x: _merge(x, 1, strided), states)
  denom = jnp.maximum(n, 1.0)
  return total / denom, jax.tree.map(lambda g: g / denom, grads), state, n


def train_step(
  state: TrainState,
  batch,
  rnn_state: model.State,
  *,
  cfg: ModelConfig,
  ex: ExecConfig,
  tx: optax.GradientTransformation,
  microbatches: int = 1,
  mesh=None,
  carry_state: bool = False,
):
  """One update. Returns (new TrainState, final recurrent state, metrics).

  carry_state: start from `rnn_state` (carried, no gradient); False ignores it and starts from
    the learned (h0, c0), which get the gradient (fresh windows).
  mesh: None on one device; a mesh of several runs the sharded loss (bptt.sequence_loss).
  """
  if not carry_state:
    rnn_state = None
  loss, grads, rnn_state, n = loss_and_grad(
    state.params, batch, rnn_state, cfg=cfg, ex=ex, microbatches=microbatches, mesh=mesh
  )
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
  metrics = {"loss": loss, "grad_norm": grad_norm, "n_valid": n}
  return state._replace(step=state.step + 1, params=params, opt_state=opt_state), rnn_state, metrics


def eval_step(params, batch, *, cfg: ModelConfig, ex: ExecConfig, buckets: int, mesh=None):
  """Sums over a batch of windows that each start from the learned initial state: loss, top-1
  and top-5 hits and the valid count, overall and per position bucket (early to late).

  Sums, so that several batches can be added before dividing (`ratios`). The training loop's
  validation and `python -m rcfam_jax.research.evaluate` both run this step.
  """
  t = batch["actions"].shape[1]
  _, aux = bptt_lib.sequence_loss(params, batch, None, cfg=cfg, ex=ex, mesh=mesh, topk=5)
  bucket_T = jnp.minimum(jnp.arange(t) * buckets // t, buckets - 1)
  out = {}
  for name, key in (
    ("loss", "loss_BxT"),
    ("top1", "top1_BxT"),
    ("top5", "topk_BxT"),
    ("count", "valid_BxT"),
  ):
    s_T = jnp.sum(aux[key].astype(jnp.float32), 0)
    by_bucket = jax.ops.segment_sum(s_T, bucket_T, num_segments=buckets)
    out[name], out[f"bucket_{name}"] = jnp.sum(s_T), by_bucket
  return out


def ratios(sums, buckets: int) -> dict:
  """eval_step sums (added over batches, as numpy) -> loss, acc (top-1), top5 and count,
  overall and per bucket."""

  def one(pick):
    n = max(float(pick("count")), 1.0)
    return {
      "loss": float(pick("loss")) / n,
      "acc": float(pick("top1")) / n,
      "top5": float(pick("top5")) / n,
      "count": int(pick("count")),
    }

  res = one(lambda k: sums[k])
  res["buckets"] = [one(lambda k, i=i: sums[f"bucket_{k}"][i]) for i in range(buckets)]
  return res
