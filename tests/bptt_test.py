"""Memory-bounded BPTT: exact gradients, memory flat in T, and a model that learns."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY, ex, random_batch

from rcfam_jax import bptt, model, train
from rcfam_jax.config import ModelConfig
from rcfam_jax.research.bench import cli as bench


def _max_rel_err(ref, got):
  errs = jax.tree.map(
    lambda a, b: float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-30)), ref, got
  )
  return max(jax.tree.leaves(errs))


@pytest.fixture(scope="module")
def reference(tiny_params):
  b, t = 2, 9
  batch = random_batch(jax.random.PRNGKey(1), TINY, b, t, resets=True)
  state = model.initial_state(tiny_params, b)
  (loss, aux), grads = jax.jit(
    jax.value_and_grad(functools.partial(bptt.plain_loss, cfg=TINY, ex=ex()), has_aux=True)
  )(tiny_params, batch, state)
  return batch, state, loss, aux, grads


# Every value of every remat knob appears at least once (the full product is slow on 2 CPUs).
@pytest.mark.parametrize(
  "head_remat, layer_remat, lstm_remat",
  [
    ("full", False, "none"),
    ("full", True, "step"),
    ("full", False, "nested"),
    ("none", False, "step"),
    ("none", True, "nested"),
    ("convs", False, "none"),
    ("matmuls", False, "step"),
  ],
)
def test_bounded_gradient_equals_plain_backprop(
  tiny_params, reference, lstm_remat, head_remat, layer_remat
):
  batch, state, loss, aux, grads = reference
  # Chunk sizes that do not divide T=9 exercise the tail blocks too.
  cfg = ex(
    head_chunk=4,
    head_remat=head_remat,
    layer_remat=layer_remat,
    lstm_remat=lstm_remat,
    recompute_interval=2,
    loss_chunk=4,
  )
  (b_loss, b_aux), b_grads = jax.jit(functools.partial(bptt.loss_and_grad, cfg=TINY, ex=cfg))(
    tiny_params, batch, state
  )
  np.testing.assert_allclose(b_loss, loss, rtol=1e-6)
  np.testing.assert_allclose(b_aux["loss_BxT"], aux["loss_BxT"], rtol=1e-5, atol=1e-6)
  assert _max_rel_err(grads, b_grads) < 1e-5
  assert _max_rel_err(aux["state"], b_aux["state"]) < 1e-5
  # The learned initial state is trained like the rest.
  assert float(jnp.abs(b_grads["lstm"]["h0"]).sum()) > 0


def test_frames_on_host_gives_the_same_loss_and_gradient(tiny_params, reference):
  batch, state, loss, _, grads = reference
  cfg = ex(head_chunk=4, frames_on_host=True)
  host = bptt.frames_to_host(batch)
  assert host["frames"].sharding.memory_kind == "pinned_host"
  fn = jax.jit(functools.partial(bptt.loss_and_grad, cfg=TINY, ex=cfg))
  (h_loss, _), h_grads = fn(tiny_params, host, state)
  np.testing.assert_allclose(h_loss, loss, rtol=1e-6)
  assert _max_rel_err(grads, h_grads) < 1e-5


def test_padding_never_counts(tiny_params):
  b, t = 2, 6
  batch = random_batch(jax.random.PRNGKey(2), TINY, b, t)
  state = model.initial_state(tiny_params, b)
  cfg = ex(head_chunk=3, loss_chunk=2)
  loss_fn = functools.partial(bptt.sequence_loss, cfg=TINY, ex=cfg)
  # One program for the loss and its gradient.
  f = jax.jit(jax.value_and_grad(lambda p, x: loss_fn(p, x, state), has_aux=True))
  (loss, aux), g1 = f(tiny_params, batch)
  per_pos = aux["loss_BxT"]
  valid = np.asarray(batch["valid"])
  np.testing.assert_allclose(loss, per_pos[valid].mean(), rtol=1e-6)
  assert np.all(np.asarray(per_pos)[~valid] == 0)
  # Changing the targets at padded positions changes neither the loss nor the gradient.
  other = dict(batch, actions=jnp.where(batch["valid"], batch["actions"], 0))
  g2 = f(tiny_params, other)[1]
  assert _max_rel_err(g1, g2) == 0.0


MEM_CFG = ModelConfig(
  rows=16,
  cols=32,
  d_model=32,
  n_layer=1,
  n_head=2,
  downsample_blocks=1,
  lstm_hidden=32,
  vocab_size=64,
  compute_dtype="float32",
)


def _temp_bytes(loss_fn, t, b=2):
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), MEM_CFG))
  batch = {
    "frames": jax.ShapeDtypeStruct((b, t) + MEM_CFG.frame_shape, jnp.uint8),
    "actions": jax.ShapeDtypeStruct((b, t), jnp.int32),
  }
  state = jax.eval_shape(lambda p: model.initial_state(p, b), params)
  grad = jax.jit(jax.grad(lambda p, x, s: loss_fn(p, x, s)[0]))
  return grad.lower(params, batch, state).compile().memory_analysis().temp_size_in_bytes


MEM_T = 16


@pytest.fixture(scope="module")
def plain_temp_bytes():
  """Plain backprop's temp bytes at T and 8T: one compile each for both lstm_remat cases."""
  plain = functools.partial(bptt.plain_loss, cfg=MEM_CFG, ex=ex())
  return _temp_bytes(plain, MEM_T), _temp_bytes(plain, 8 * MEM_T)


@pytest.mark.parametrize("lstm_remat", ["none", "nested"])
def test_compiled_memory_is_flat_in_t_only_for_the_bounded_scheme(lstm_remat, plain_temp_bytes):
  bounded = functools.partial(
    bptt.sequence_loss,
    cfg=MEM_CFG,
    ex=ex(head_chunk=8, lstm_remat=lstm_remat, recompute_interval=8, loss_chunk=8),
  )
  t = MEM_T
  b_small, b_large = _temp_bytes(bounded, t), _temp_bytes(bounded, 8 * t)
  p_small, p_large = plain_temp_bytes
  assert b_large <= 1.5 * b_small, (b_small, b_large)
  assert p_large >= 6 * p_small, (p_small, p_large)


def test_tiny_model_learns_fixed_frames():
  cfg = TINY
  tx = optax.adam(3e-3)
  state = train.init_train_state(jax.random.PRNGKey(0), cfg, tx)
  batch = random_batch(jax.random.PRNGKey(1), cfg, 4, 8)
  rnn0 = model.initial_state(state.params, 4)
  step = jax.jit(functools.partial(train.train_step, cfg=cfg, ex=ex(head_chunk=4), tx=tx))
  losses = []
  for _ in range(40):
    state, _, metrics = step(state, batch, rnn0)
    losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.7 * losses[0], losses
  assert int(state.step) == 40


def test_bench_train_worker_prints_a_json_line(capsys):
  m, b = bench.parse_overrides(
    [
      "rows=8",
      "cols=16",
      "d_model=16",
      "n_layer=1",
      "n_head=2",
      "downsample_blocks=1",
      "lstm_hidden=16",
      "vocab_size=32",
      "head_chunk=2",
      "compute_dtype=float32",
    ]
  )
  bench.worker("train", {"batch": 2, "m": m, "b": b, "T": 3, "steps": 1})
  lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
  lines = [line for line in lines if line["kind"] == "train"]
  assert [line["T"] for line in lines] == [3]
  for line in lines:
    assert {"T", "batch", "step_s", "frames_per_s", "peak_bytes"} <= set(line)
    assert line["frames_per_s"] > 0 and np.isfinite(line["loss"])


def test_bench_rejects_unknown_fields():
  with pytest.raises(SystemExit, match="unknown field"):
    bench.parse_overrides(["d_modle=3"])


def test_microbatch_accumulation_equals_full_batch(tiny_params):
  b, t = 4, 6
  batch = random_batch(jax.random.PRNGKey(7), TINY, b, t, resets=True)
  state = model.initial_state(tiny_params, b)
  cfg = ex(head_chunk=3, loss_chunk=3)
  full = jax.jit(functools.partial(train.loss_and_grad, cfg=TINY, ex=cfg))
  micro = jax.jit(functools.partial(train.loss_and_grad, cfg=TINY, ex=cfg, microbatches=2))
  l1, g1, s1, n1 = full(tiny_params, batch, state)
  l2, g2, s2, n2 = micro(tiny_params, batch, state)
  np.testing.assert_allclose(l2, l1, rtol=1e-6)
  assert float(n1) == float(n2) == float(jnp.sum(batch["valid"]))
  assert _max_rel_err(g1, g2) < 1e-5
  assert _max_rel_err(s1, s2) < 1e-6


def test_head_remat_convs_skips_the_convolution_recompute(tiny_params):
  """'convs' keeps each chunk's convolution outputs: the backward pass runs one convolution
  fewer per downsample block than 'full' (which recomputes the forward), same gradients."""
  cfg = TINY
  batch = random_batch(jax.random.PRNGKey(5), cfg, 2, 6)
  state = model.initial_state(tiny_params, 2)
  counts, grads = {}, {}
  for remat in ("full", "convs"):
    f = jax.jit(
      functools.partial(
        bptt.loss_and_grad, cfg=cfg, ex=ex(head_chunk=3, head_remat=remat, conv_impl="xla")
      )
    )
    compiled = f.lower(tiny_params, batch, state).compile()  # the program that runs below
    counts[remat] = compiled.as_text().count("convolution(")
    grads[remat] = compiled(tiny_params, batch, state)[1]
  assert counts["convs"] == counts["full"] - cfg.downsample_blocks, counts
  for a, b in zip(jax.tree.leaves(grads["convs"]), jax.tree.leaves(grads["full"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
