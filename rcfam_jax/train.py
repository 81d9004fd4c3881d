"""Pure training step: memory-bounded loss and gradient, then the optimizer update.

The recurrent state is carried between windows (truncated BPTT) and returned with its gradient
stopped. `cfg`, `bptt` and `tx` are closed over with functools.partial before `jax.jit`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rcfam_jax import bptt as bptt_lib
from rcfam_jax import model
from rcfam_jax.config import BPTTConfig, ModelConfig


class TrainState(NamedTuple):
  step: jax.Array
  params: Any
  opt_state: Any


def init_train_state(key, cfg: ModelConfig, tx: optax.GradientTransformation) -> TrainState:
  params = model.init(key, cfg)
  return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))


def train_step(state: TrainState, batch, rnn_state: model.State, *, cfg: ModelConfig,
               bptt: BPTTConfig, tx: optax.GradientTransformation):
  """One update. Returns (new TrainState, final recurrent state, metrics)."""
  (loss, aux), grads = bptt_lib.loss_and_grad(state.params, batch, rnn_state, cfg=cfg, bptt=bptt)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  grad_norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
  metrics = {"loss": loss, "grad_norm": grad_norm,
             "n_valid": jnp.sum(aux["valid_BxT"])}
  return TrainState(state.step + 1, params, opt_state), aux["state"], metrics
