"""Shared tiny configurations and batches for the core tests (CPU, float32)."""

import jax
import jax.numpy as jnp
import pytest

from rcfam_jax import model
from rcfam_jax.config import ModelConfig

jax.config.update("jax_threefry_partitionable", True)

TINY = ModelConfig(
  rows=8,
  cols=16,
  d_model=32,
  n_layer=2,
  n_head=2,
  downsample_blocks=1,
  lstm_hidden=24,
  lstm_layers=2,
  vocab_size=40,
  compute_dtype="float32",
)


def random_batch(key, cfg, b, t, *, resets=False):
  kf, ka, kv = jax.random.split(key, 3)
  batch = {
    "frames": jax.random.randint(kf, (b, t) + cfg.frame_shape, 0, 256).astype(jnp.uint8),
    "actions": jax.random.randint(ka, (b, t), 0, cfg.vocab_size),
    "valid": jax.random.uniform(kv, (b, t)) > 0.2,
  }
  if resets:
    batch["reset"] = jnp.zeros((b, t), bool).at[0, t // 2].set(True).at[-1, 1].set(True)
  return batch


@pytest.fixture(scope="module")
def tiny_params():
  return model.init(jax.random.PRNGKey(0), TINY)
