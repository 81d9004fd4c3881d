"""Masked next-action cross-entropy."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(logits_xV, targets):
  """Per-position cross-entropy (float32), same leading shape as `targets`."""
  logits_xV = logits_xV.astype(jnp.float32)
  picked = jnp.take_along_axis(logits_xV, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return jax.nn.logsumexp(logits_xV, axis=-1) - picked


def masked_mean(loss, valid):
  """Mean over valid positions; padding never counts. 0 when nothing is valid."""
  valid = valid.astype(jnp.float32)
  return jnp.sum(loss * valid) / jnp.maximum(jnp.sum(valid), 1.0)
