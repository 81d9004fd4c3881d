"""The pure-function model: shapes, errors, streaming equivalence, resets, causality."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, ex, random_batch

from rcfam_jax import frame_head, model
from rcfam_jax.config import ExecConfig, ModelConfig, check_exec, from_dict

# model.apply as one compiled program per shape and config: the same function, compiled several
# times faster on a CPU than eager execution's scans and ops one by one.
apply = jax.jit(model.apply, static_argnames=("cfg", "ex"))


def test_shapes_and_dtypes(tiny_params):
  b, t = 3, 5
  batch = random_batch(jax.random.PRNGKey(1), TINY, b, t)
  state = model.initial_state(tiny_params, b)
  chex.assert_shape(state.h, (TINY.lstm_layers, b, TINY.lstm_hidden))
  logits, new_state = apply(tiny_params, batch["frames"], state, cfg=TINY)
  chex.assert_shape(logits, (b, t, TINY.vocab_size))
  chex.assert_type(logits, jnp.float32)
  chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)
  emb = frame_head.apply(tiny_params["frame_head"], batch["frames"], TINY)
  chex.assert_shape(emb, (b, t, TINY.d_model))
  chex.assert_tree_all_finite((logits, new_state, emb))


def test_bf16_compute_keeps_fp32_state_and_logits():
  cfg = from_dict(ModelConfig, {**TINY.__dict__, "compute_dtype": "bfloat16"})
  params = model.init(jax.random.PRNGKey(0), cfg)
  batch = random_batch(jax.random.PRNGKey(1), cfg, 2, 4)
  logits, state = apply(params, batch["frames"], model.initial_state(params, 2), cfg=cfg)
  chex.assert_type([logits, state.h, state.c], jnp.float32)
  chex.assert_tree_all_finite(logits)


@pytest.mark.parametrize(
  "shape, match",
  [
    ((2, 3, 8, 17, 7), r"expected \(\.\.\., 8, 16, 7\)"),
    ((2, 3, 8, 16, 3), r"expected \(\.\.\., 8, 16, 7\)"),
    ((16, 7), r"expected"),
  ],
)
def test_malformed_frames_raise(tiny_params, shape, match):
  frames = jnp.zeros(shape, jnp.uint8)
  with pytest.raises(ValueError, match=match):
    model.apply(tiny_params, frames, model.initial_state(tiny_params, 2), cfg=TINY)


def test_float_frames_raise(tiny_params):
  with pytest.raises(ValueError, match="integer cells"):
    frame_head.apply(tiny_params["frame_head"], jnp.zeros((1, 8, 16, 7)), TINY)


@pytest.mark.parametrize(
  "bad, match",
  [
    ({"rows": 9}, "not divisible by 2\\^downsample_blocks=2"),
    ({"d_model": 31}, "divisible by n_head"),
    ({"reduction": "max"}, "reduction"),
    ({"no_such_field": 1}, "unknown ModelConfig field"),
  ],
)
def test_bad_config_values_raise(bad, match):
  with pytest.raises(ValueError, match=match):
    from_dict(ModelConfig, {**TINY.__dict__, **bad})


def test_bad_exec_values_raise():
  with pytest.raises(ValueError, match="lstm_remat"):
    ExecConfig(lstm_remat="sometimes")
  with pytest.raises(ValueError, match="head_chunk"):
    ExecConfig(head_chunk=0)


def test_step_t_times_equals_apply(tiny_params):
  b, t = 2, 6
  batch = random_batch(jax.random.PRNGKey(2), TINY, b, t, resets=True)
  state0 = model.initial_state(tiny_params, b)
  logits, final = apply(tiny_params, batch["frames"], state0, batch["reset"], cfg=TINY)
  step = jax.jit(lambda p, f, s, r: model.step(p, f, s, r, cfg=TINY))
  state, outs = state0, []
  for i in range(t):
    out, state = step(tiny_params, batch["frames"][:, i], state, batch["reset"][:, i])
    outs.append(out)
  np.testing.assert_allclose(jnp.stack(outs, 1), logits, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(state, final, rtol=1e-5, atol=1e-5)


def test_windows_with_carried_state_equal_one_pass(tiny_params):
  """Truncated-BPTT windows that carry the state compute the same outputs as one long pass."""
  b, t = 2, 8
  batch = random_batch(jax.random.PRNGKey(3), TINY, b, t)
  s0 = model.initial_state(tiny_params, b)
  full, _ = apply(tiny_params, batch["frames"], s0, cfg=TINY)
  a, s1 = apply(tiny_params, batch["frames"][:, :5], s0, cfg=TINY)
  c, _ = apply(tiny_params, batch["frames"][:, 5:], s1, cfg=TINY, ex=ExecConfig(head_chunk=2))
  np.testing.assert_allclose(jnp.concatenate([a, c], 1), full, rtol=1e-5, atol=1e-5)


def test_reset_restores_learned_initial_state(tiny_params):
  # Make h0/c0 non-trivial so that "restored" is distinguishable from zeros.
  params = jax.tree.map(lambda x: x, tiny_params)
  params["lstm"]["h0"] = jnp.full_like(params["lstm"]["h0"], 0.3)
  params["lstm"]["c0"] = jnp.full_like(params["lstm"]["c0"], -0.2)
  b, t, r = 2, 7, 4
  batch = random_batch(jax.random.PRNGKey(4), TINY, b, t)
  resets = jnp.zeros((b, t), bool).at[:, r].set(True)
  s0 = model.initial_state(params, b)
  logits, _ = apply(params, batch["frames"], s0, resets, cfg=TINY)
  fresh, _ = apply(params, batch["frames"][:, r:], s0, cfg=TINY)
  np.testing.assert_allclose(logits[:, r:], fresh, rtol=1e-5, atol=1e-5)
  no_reset, _ = apply(params, batch["frames"], s0, cfg=TINY)
  assert not np.allclose(no_reset[:, r:], fresh, atol=1e-4)


def test_causality_by_gradient(tiny_params):
  """d logits[t] / d embedding[s] is exactly zero for every s > t."""
  b, t, probe = 2, 6, 2
  emb = jax.random.normal(jax.random.PRNGKey(5), (t, b, TINY.d_model))
  s0 = model.initial_state(tiny_params, b)

  def out_at_probe(e):
    y, _ = model.backbone(tiny_params, e, s0, cfg=TINY)
    return jnp.sum(model.logits(tiny_params, y[probe]))

  g = jax.jit(jax.grad(out_at_probe))(emb)
  assert np.all(np.asarray(g[probe + 1 :]) == 0.0)
  assert np.all(np.abs(np.asarray(g[: probe + 1])).sum(axis=(1, 2)) > 0)


def test_future_frames_do_not_change_past_outputs(tiny_params):
  b, t, probe = 2, 6, 3
  batch = random_batch(jax.random.PRNGKey(6), TINY, b, t)
  s0 = model.initial_state(tiny_params, b)
  a, _ = apply(tiny_params, batch["frames"], s0, cfg=TINY)
  changed = batch["frames"].at[:, probe + 1 :].set(7)
  c, _ = apply(tiny_params, changed, s0, cfg=TINY)
  np.testing.assert_array_equal(a[:, : probe + 1], c[:, : probe + 1])
  assert not np.allclose(a[:, probe + 1 :], c[:, probe + 1 :])


def test_out_of_range_codepoints_are_clamped_to_the_last_row(tiny_params):
  """The author's loaders clamp codepoints to n_codepoints - 1 before the embedding."""
  cfg = from_dict(ModelConfig, {**TINY.__dict__, "n_codepoints": 128})
  params = frame_head.init(jax.random.PRNGKey(0), cfg)
  cells = jnp.zeros((1,) + cfg.frame_shape, jnp.int32).at[..., 0].set(200)
  x = frame_head.embed_cells(params, cells, cfg)
  expect = (
    params["pos_embed"].reshape(cfg.rows, cfg.cols, cfg.d_model)[None] + params["cp_embed"][127]
  )
  np.testing.assert_allclose(x, expect, rtol=1e-6)


def test_reference_parameter_counts():
  """The author's debug.json model (fbamtrain working_dir/run-configs/debug.json): 94,030,848
  parameters with his two LSTM biases; one bias and 24x80 frames give fewer."""

  def count(cfg):
    return model.n_params(jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), cfg)))

  debug = ModelConfig(
    rows=48,
    cols=160,
    d_model=1024,
    n_layer=3,
    n_head=8,
    lstm_hidden=1024,
    vocab_size=20352,
    lstm_biases=2,
  )
  assert count(debug) == 94_030_848
  assert count(dataclasses.replace(debug, lstm_biases=1)) == 94_030_848 - 4 * 1024
  assert count(dataclasses.replace(debug, attention_bias=False)) == 94_030_848 - 3 * 9 * 1024
  assert count(dataclasses.replace(debug, rows=24, cols=80)) == 94_030_848 - 5760 * 1024


def test_two_lstm_biases_are_one_bias_of_their_sum(tiny_params):
  cfg2 = dataclasses.replace(TINY, lstm_biases=2)
  p2 = model.init(jax.random.PRNGKey(0), cfg2)
  p1 = jax.tree.map(lambda x: x, p2)
  for layer in p1["lstm"]["layers"]:
    layer["b"] = layer["b"] + layer.pop("b_h")
  batch = random_batch(jax.random.PRNGKey(2), TINY, 2, 3)
  a, _ = apply(p2, batch["frames"], model.initial_state(p2, 2), cfg=cfg2)
  b, _ = apply(p1, batch["frames"], model.initial_state(p1, 2), cfg=TINY)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_geglu_downsample_is_value_times_gelu_of_gate():
  """The author's 'geglu' mode: undilated 3x3 conv to 2d channels, value * GELU(gate), pool."""
  from rcfam_jax import nn

  cfg = dataclasses.replace(TINY, downsample_mode="geglu")
  p = frame_head.init(jax.random.PRNGKey(0), cfg)["down"][0]
  assert p["conv"].shape == (3, 3, cfg.d_model, 2 * cfg.d_model)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 16, cfg.d_model))
  y = jax.lax.conv_general_dilated(
    nn.rms_norm(p["norm"], x, cfg.rms_eps),
    p["conv"],
    (1, 1),
    ((1, 1), (1, 1)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  value, gate = y[..., : cfg.d_model], y[..., cfg.d_model :]
  expect = nn.avg_pool2x2(value * jax.nn.gelu(gate, approximate=False))
  for impl in ("xla", "matmul"):
    got = frame_head.downsample(p, x, cfg, impl)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="parity"):
    check_exec(cfg, ExecConfig(conv_impl="parity"))


def test_conv_implementations_agree():
  """Shifted matmuls (CPU default) and im2col equal lax.conv (GPU default), grads too."""
  from rcfam_jax import nn

  w = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 8, 6))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 12, 8))
  f = lambda impl: lambda w, x: jnp.sum(jnp.sin(nn.conv3x3_dilated(w, x, jnp.float32, impl=impl)))
  for impl in ("matmul", "im2col"):
    np.testing.assert_allclose(jax.jit(f(impl))(w, x), jax.jit(f("xla"))(w, x), rtol=1e-5)
    grad = lambda impl: jax.jit(jax.grad(f(impl), (0, 1)))(w, x)
    chex.assert_trees_all_close(grad(impl), grad("xla"), rtol=1e-4, atol=1e-4)


def test_parity_downsample_equals_the_dilated_block():
  """conv_impl='parity' (undilated convs on the 4 parity sub-grids, pool = their mean) is the
  same function as norm -> dilated conv -> GELU -> pool, values and gradients."""
  cfg = dataclasses.replace(TINY, compute_dtype="float32")
  p = frame_head.init(jax.random.PRNGKey(0), cfg)["down"][0]
  p = {**p, "norm": p["norm"] + jax.random.normal(jax.random.PRNGKey(2), p["norm"].shape)}
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 8, 12, cfg.d_model))
  f = lambda impl: lambda p, x: jnp.sum(jnp.sin(frame_head.downsample(p, x, cfg, impl)))
  down = jax.jit(frame_head.downsample, static_argnums=(2, 3))
  np.testing.assert_allclose(
    down(p, x, cfg, "parity"), down(p, x, cfg, "xla"), rtol=1e-5, atol=1e-6
  )
  grad = lambda impl: jax.jit(jax.grad(f(impl), (0, 1)))(p, x)
  chex.assert_trees_all_close(grad("parity"), grad("xla"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_last_position_block_equals_the_full_block_at_the_last_position(dtype):
  """With 'last_pos' the head runs its last attention block at the last position only: the
  same function as every block on every token then the last one, values and gradients (of
  the input and of every parameter), in float32 and within bf16 rounding in bfloat16."""
  cfg = dataclasses.replace(TINY, n_layer=3, compute_dtype=dtype)
  blocks = frame_head.init(jax.random.PRNGKey(0), cfg)["blocks"]
  noise = lambda a: 0.1 * jax.random.normal(jax.random.PRNGKey(3), a.shape)
  blocks = jax.tree.map(lambda a: a + noise(a), blocks)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 10, cfg.d_model))

  def full(blocks, x):
    body = lambda x, p: (frame_head.attention_block(p, x, cfg, None), None)
    return jax.lax.scan(body, x, blocks)[0][:, -1]

  pruned = lambda blocks, x: frame_head.attention_stack(blocks, x, cfg, ex(attention_impl=None))
  tol = {"float32": 1e-5, "bfloat16": 3e-2}[dtype]
  got, want = jax.jit(pruned)(blocks, x), jax.jit(full)(blocks, x)
  np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
  loss = lambda f: lambda b, x: jnp.sum(jnp.sin(f(b, x)))
  grad = lambda f: jax.jit(jax.grad(loss(f), (0, 1)))(blocks, x)
  chex.assert_trees_all_close(grad(pruned), grad(full), rtol=tol, atol=tol)


def _equations(jaxpr):
  """All equations of a jaxpr, those of sub-jaxprs (custom_vjp, pjit) included."""
  for e in jaxpr.eqns:
    yield e
    for v in e.params.values():
      for j in v if isinstance(v, (list, tuple)) else [v]:
        j = getattr(j, "jaxpr", j)  # ClosedJaxpr -> Jaxpr
        if hasattr(j, "eqns"):
          yield from _equations(j)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cell_embedding_equals_the_one_hot_matmul(dtype):
  """embed_cells (gather forward, matmul backward) is [one_hot(cp), colour/255] @ [E_cp; u] + P,
  values and gradients, with codepoints past n_codepoints clamped to the last row."""
  from rcfam_jax import nn

  cfg = from_dict(ModelConfig, {**TINY.__dict__, "n_codepoints": 128, "compute_dtype": dtype})
  params = frame_head.init(jax.random.PRNGKey(0), cfg)
  cells = jax.random.randint(jax.random.PRNGKey(1), (3,) + cfg.frame_shape, 0, 256).astype(
    jnp.uint8
  )
  dt = jnp.dtype(dtype)

  def reference(params):
    cp = jnp.minimum(cells[..., 0], cfg.n_codepoints - 1)
    a = jnp.concatenate(
      [
        jax.nn.one_hot(cp, cfg.n_codepoints, dtype=dt),
        cells[..., 1:].astype(dt) * jnp.asarray(1 / 255, dt),
      ],
      axis=-1,
    )
    table = jnp.concatenate([params["cp_embed"], params["color"]], axis=0)
    x = nn.matmul(a, table, dt) + params["pos_embed"].reshape(cfg.rows, cfg.cols, cfg.d_model)
    return x.astype(dt)

  ours = lambda params: frame_head.embed_cells(params, cells, cfg)
  tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=2e-2, atol=2e-2)
  chex.assert_trees_all_close(ours(params), reference(params), **tol)
  loss = lambda f: lambda p: jnp.sum(jnp.sin(f(p).astype(jnp.float32)))
  chex.assert_trees_all_close(
    jax.grad(loss(ours))(params), jax.grad(loss(reference))(params), **tol
  )


@pytest.mark.parametrize("name", ["gelu", "rms_norm"])
def test_gelu_and_rms_norm_save_only_their_input(name, capsys):
  """nn.gelu and nn.rms_norm (custom VJPs) keep their input as saved, in its dtype, for the
  backward pass, and give autodiff's gradients of the same float32 formula. Autodiff of the
  formula itself saves float32 intermediates of the input's shape (3 for GELU)."""
  from jax.ad_checkpoint import print_saved_residuals

  from rcfam_jax import nn

  x = (3 * jax.random.normal(jax.random.PRNGKey(0), (4, 6, 32))).astype(jnp.bfloat16)
  s = 1 + 0.3 * jax.random.normal(jax.random.PRNGKey(1), (32,))

  def plain(s, x):
    y = x.astype(jnp.float32)
    if name == "gelu":
      return jax.nn.gelu(y, approximate=False).astype(x.dtype)
    return (y * jax.lax.rsqrt(jnp.mean(y * y, -1, keepdims=True) + 1e-5) * s).astype(x.dtype)

  ours = (lambda s, x: nn.gelu(x)) if name == "gelu" else (lambda s, x: nn.rms_norm(s, x, 1e-5))
  print_saved_residuals(ours, s, x)
  saved = [line for line in capsys.readouterr().out.splitlines() if "[4,6,32]" in line]
  assert saved == ["bf16[4,6,32] from the argument x"], saved
  print_saved_residuals(plain, s, x)
  assert any(line.startswith("f32[4,6,32]") for line in capsys.readouterr().out.splitlines())
  for dt in (jnp.float32, jnp.bfloat16):
    loss = lambda f: lambda s, x: jnp.sum(jnp.sin(f(s, x).astype(jnp.float32)))
    got = jax.grad(loss(ours), (0, 1))(s, x.astype(dt))
    want = jax.grad(loss(plain), (0, 1))(s, x.astype(dt))
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5)


def test_bf16_matmul_backward_runs_in_bf16():
  """nn.matmul's backward GEMMs take bf16 operands (JAX's own transpose would upcast them to
  f32), and its gradients match the f32 ones within bf16 tolerance; f32 is the plain matmul."""
  from rcfam_jax import nn

  x = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 32))
  w = jax.random.normal(jax.random.PRNGKey(1), (32, 16)) / 6
  f = lambda dt: lambda x, w: jnp.sum(jnp.sin(nn.matmul(x, w, dt)))
  jaxpr = jax.make_jaxpr(jax.grad(f(jnp.bfloat16), (0, 1)))(x, w).jaxpr
  dots = [e for e in _equations(jaxpr) if e.primitive.name == "dot_general"]
  assert len(dots) == 3  # forward, dx, dw
  assert all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)
  assert nn.matmul(x, w, jnp.bfloat16).dtype == jnp.float32
  chex.assert_trees_all_close(
    jax.grad(f(jnp.bfloat16), (0, 1))(x, w),
    jax.grad(f(jnp.float32), (0, 1))(x, w),
    rtol=3e-2,
    atol=3e-2,
  )
  np.testing.assert_allclose(nn.matmul(x, w, jnp.float32), x @ w, rtol=1e-6)
  y16 = nn.matmul(x, w, jnp.bfloat16, out_dtype=jnp.bfloat16)  # bf16 activations
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(
    y16.astype(jnp.float32), nn.matmul(x, w, jnp.bfloat16), rtol=1e-2, atol=1e-2
  )
  g = lambda x, w: jnp.sum(jnp.sin(nn.matmul(x, w, jnp.bfloat16, jnp.bfloat16).astype(float)))
  for a, b in zip(jax.grad(g, (0, 1))(x, w), jax.grad(f(jnp.float32), (0, 1))(x, w)):
    assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) < 1e-2


def test_packed_cells_embed_as_their_contract_frames(tiny_params):
  """uint16 cells (what the training reader hands the device) expand on the device to the
  frames the host expansion gives."""
  from data_pipelines import codec

  rng = np.random.default_rng(0)
  cells = rng.integers(0, codec.CELL_LUT.shape[0], (2, 3, TINY.rows, TINY.cols)).astype(np.uint16)
  np.testing.assert_array_equal(frame_head.unpack(jnp.asarray(cells)), codec.to_rgb(cells))
  s0 = model.initial_state(tiny_params, 2)
  ex = ExecConfig(head_chunk=2)
  a, _ = apply(tiny_params, jnp.asarray(cells), s0, cfg=TINY, ex=ex)
  b, _ = apply(tiny_params, jnp.asarray(codec.to_rgb(cells)), s0, cfg=TINY, ex=ex)
  np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
  "ex",
  [
    ExecConfig(conv_impl="xla", head_chunk=1, lstm_unroll=1),
    ExecConfig(conv_impl="im2col", head_chunk=3, head_remat="convs", lstm_unroll=5),
    ExecConfig(
      conv_impl="parity",
      attention_impl="xla",
      layer_remat=True,
      lstm_remat="nested",
      recompute_interval=2,
    ),
  ],
)
def test_equal_model_configs_compute_the_same_function(tiny_params, ex):
  """ExecConfig says how the model runs, never what it computes: logits and the final state
  under any execution equal those under the defaults."""
  b, t = 2, 7
  batch = random_batch(jax.random.PRNGKey(8), TINY, b, t, resets=True)
  s0 = model.initial_state(tiny_params, b)
  want, want_s = apply(tiny_params, batch["frames"], s0, batch["reset"], cfg=TINY)
  got, got_s = apply(tiny_params, batch["frames"], s0, batch["reset"], cfg=TINY, ex=ex)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(got_s, want_s, rtol=1e-5, atol=1e-5)
