"""conv_impl='parity' in groups of at most PARITY_MAX_IMAGES images: the same function, and no
convolution larger than the limit (larger ones never finished compiling on an H200)."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY

from rcfam_jax import frame_head
from rcfam_jax.config import ExecConfig


def _convs(jaxpr):
  """The lhs shapes of every convolution in a jaxpr, sub-jaxprs (scan, custom_vjp) included."""
  for e in jaxpr.eqns:
    if e.primitive.name == "conv_general_dilated":
      yield e.invars[0].aval.shape
    for v in e.params.values():
      for j in v if isinstance(v, (list, tuple)) else [v]:
        j = getattr(j, "jaxpr", j)
        if hasattr(j, "eqns"):
          yield from _convs(j)


@pytest.mark.parametrize("max_images", [2048, 5, 12])
def test_grouped_parity_downsample_equals_the_dilated_block(monkeypatch, max_images):
  """3 images -> 12 parity sub-images: one conv (2048, 12), or groups of 5 and a remainder."""
  monkeypatch.setattr(frame_head, "PARITY_MAX_IMAGES", max_images)
  cfg = dataclasses.replace(TINY, compute_dtype="float32")
  p = frame_head.init(jax.random.PRNGKey(0), cfg)["down"][0]
  p = {**p, "norm": p["norm"] + jax.random.normal(jax.random.PRNGKey(2), p["norm"].shape)}
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 8, 12, cfg.d_model))
  f = lambda impl: lambda p, x: jnp.sum(jnp.sin(frame_head.downsample(p, x, cfg, impl)))
  np.testing.assert_allclose(
    frame_head.downsample(p, x, cfg, "parity"),
    frame_head.downsample(p, x, cfg, "xla"),
    rtol=1e-5,
    atol=1e-6,
  )
  chex.assert_trees_all_close(
    jax.grad(f("parity"), (0, 1))(p, x), jax.grad(f("xla"), (0, 1))(p, x), rtol=1e-4, atol=1e-5
  )


def test_no_parity_convolution_exceeds_the_limit(monkeypatch):
  """A head chunk of 6 frames is 24 parity images per block: forward and backward convolve at
  most PARITY_MAX_IMAGES (here 8) at a time, in three groups; the head (embedding straight into
  the parity layout) equals the dilated conv's, values and gradients."""
  monkeypatch.setattr(frame_head, "PARITY_MAX_IMAGES", 8)
  cfg = dataclasses.replace(TINY, compute_dtype="float32")
  params = frame_head.init(jax.random.PRNGKey(0), cfg)
  frames = jax.random.randint(jax.random.PRNGKey(1), (6,) + cfg.frame_shape, 0, 256)
  frames = frames.astype(jnp.uint8)  # the parity layout permutes cells and positions alike
  ex = ExecConfig(conv_impl="parity")
  loss = lambda p: jnp.sum(frame_head.apply(p, frames, cfg, ex))
  shapes = list(_convs(jax.make_jaxpr(jax.grad(loss))(params).jaxpr))
  assert shapes, "no convolution found"
  assert max(s[0] for s in shapes) == 8, shapes
  dilated = lambda p: jnp.sum(frame_head.apply(p, frames, cfg, ExecConfig(conv_impl="xla")))
  np.testing.assert_allclose(
    frame_head.apply(params, frames, cfg, ex),
    frame_head.apply(params, frames, cfg, ExecConfig(conv_impl="xla")),
    rtol=1e-5,
    atol=1e-5,
  )
  chex.assert_trees_all_close(
    jax.grad(loss)(params), jax.grad(dilated)(params), rtol=1e-4, atol=1e-4
  )
