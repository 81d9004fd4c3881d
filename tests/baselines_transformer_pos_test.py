"""The Transformer baseline's position ablation (ModelConfig.pos_encoding: rope | none | alibi)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rcfam_jax import nn
from rcfam_jax.research import baselines
from rcfam_jax.research.baselines import ModelConfig, transformer
from rcfam_jax.research.baselines.config import POS_ENCODINGS

# float32 tolerances set on a CPU: full-precision matmuls on a GPU too (conftest)
pytestmark = pytest.mark.usefixtures("full_float32_matmuls")

CFG = ModelConfig("transformer", 11, 5, d_model=16, layers=2, n_head=2)
TOKENS = jnp.array([[5, 9, 2, 4, 1, 4, 3], [5, 8, 7, 8, 2, 4, 7]])


def with_pos(pos, **kw):
  return dataclasses.replace(CFG, pos_encoding=pos, **kw)


def run(cfg, params, tokens):
  return np.asarray(jax.jit(lambda p, x: baselines.apply(p, x, cfg))(params, tokens))


def test_rope_is_the_default_and_unchanged():
  """Logits pinned from the RoPE-only implementation before pos_encoding existed (commit
  2c436f4, CPU float32, conftest's threefry_partitionable)."""
  assert CFG.pos_encoding == "rope" and with_pos("rope") == CFG
  y = run(CFG, baselines.init(jax.random.PRNGKey(0), CFG), TOKENS)
  np.testing.assert_allclose(
    y[:, -1],
    [
      [0.3289237, 0.540372, -1.1281143, 0.7412291, 0.6074315],
      [0.42766047, 0.05033925, -0.507782, 0.48923165, 0.44809055],
    ],
    rtol=1e-5,
    atol=1e-6,
  )
  np.testing.assert_allclose(
    y[1, :, 0],
    [0.8645103, 0.54527485, 0.38582104, 0.65398705, 0.9779557, 1.0395025, 0.42766047],
    rtol=1e-5,
    atol=1e-6,
  )
  np.testing.assert_allclose(np.abs(y).sum(), 35.380340576171875, rtol=1e-5)


def test_bad_pos_encoding_names_field_and_choices():
  with pytest.raises(ValueError, match=r"pos_encoding='sinusoid'.*'rope', 'none', 'alibi'"):
    with_pos("sinusoid")
  assert POS_ENCODINGS == ("rope", "none", "alibi")
  with pytest.raises(ValueError, match="even-sized heads for RoPE"):
    ModelConfig("transformer", 3, 3, d_model=12, n_head=4)  # head width 3
  for pos in ("none", "alibi"):  # odd head widths are fine without rotation
    ModelConfig("transformer", 3, 3, d_model=12, n_head=4, pos_encoding=pos)


def test_alibi_slopes_are_the_standard_ones():
  np.testing.assert_array_equal(transformer.alibi_slopes(8), [2.0**-k for k in range(1, 9)])
  np.testing.assert_array_equal(transformer.alibi_slopes(4), [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8])
  np.testing.assert_array_equal(transformer.alibi_slopes(1), [2.0**-8])
  b = transformer.alibi_bias(4, 2)
  assert b.shape == (2, 4, 4) and b.dtype == jnp.float32
  np.testing.assert_array_equal(b[0, 3], [-3 / 16, -2 / 16, -1 / 16, 0])
  np.testing.assert_array_equal(b[1, 2, :3], [-2 / 256, -1 / 256, 0])


@pytest.mark.parametrize("layers", [1, 2])
def test_alibi_equals_naive_reference(layers):
  """The whole model against one written here: explicit softmax over q.k/sqrt(P) + bias."""
  cfg = with_pos("alibi", layers=layers, n_head=4, d_model=16)
  params = baselines.init(jax.random.PRNGKey(1), cfg)
  tokens = TOKENS[:, :6]
  t, n, pw = tokens.shape[1], cfg.n_head, cfg.d_model // cfg.n_head
  slopes = [2.0 ** (-8 * (a + 1) / n) for a in range(n)]
  i, j = np.arange(t)[:, None], np.arange(t)[None, :]
  bias_AxTxT = np.stack([-m * (i - j) for m in slopes])
  causal_TxT = j <= i

  def reference(params, tokens):
    x = params["embed"][tokens]
    for layer in range(layers):
      p = jax.tree.map(lambda w: w[layer], params["layers"])
      h = nn.rms_norm(p["ln1"], x, cfg.norm_eps)
      qkv = h @ p["qkv"]["w"] + p["qkv"]["b"]
      q, k, v = (qkv[..., c * cfg.d_model : (c + 1) * cfg.d_model] for c in range(3))
      q, k, v = (z.reshape(z.shape[0], t, n, pw) for z in (q, k, v))
      logits = jnp.einsum("btap,bsap->bats", q, k) / np.sqrt(pw) + bias_AxTxT
      logits = jnp.where(causal_TxT, logits, -np.inf)
      probs = jnp.exp(logits - logits.max(-1, keepdims=True))
      probs = probs / probs.sum(-1, keepdims=True)
      a = jnp.einsum("bats,bsap->btap", probs, v).reshape(x.shape)
      x = x + a @ p["out"]["w"] + p["out"]["b"]
      h = nn.rms_norm(p["ln2"], x, cfg.norm_eps)
      f = jax.nn.gelu(h @ p["fc1"]["w"] + p["fc1"]["b"], approximate=False)
      x = x + f @ p["fc2"]["w"] + p["fc2"]["b"]
    x = nn.rms_norm(params["ln_f"], x, cfg.norm_eps)
    return x @ params["head"]["w"] + params["head"]["b"]

  with jax.default_matmul_precision("highest"):
    want = np.asarray(jax.jit(reference)(params, tokens))
    got = run(cfg, params, tokens)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert np.abs(got - run(with_pos("none", layers=layers), params, tokens)).max() > 1e-3


def test_none_ignores_the_order_of_the_prefix():
  """One layer, no positions: the last output sees its own token and the prefix as a multiset,
  so permuting the earlier tokens leaves it unchanged; RoPE and ALiBi see the order."""
  tokens = jax.random.randint(jax.random.PRNGKey(4), (3, 9), 0, 11)
  perm = np.array([5, 2, 7, 0, 6, 1, 3, 4, 8])  # keeps the last position
  shuffled = tokens[:, perm]
  for pos in POS_ENCODINGS:
    cfg = with_pos(pos, layers=1)
    params = baselines.init(jax.random.PRNGKey(0), cfg)
    y, y_perm = run(cfg, params, tokens), run(cfg, params, shuffled)
    diff = np.abs(y[:, -1] - y_perm[:, -1]).max()
    if pos == "none":
      assert diff < 1e-5, diff
      # earlier outputs are causal prefixes of a different sequence: they do change
      assert np.abs(y[:, :-1] - y_perm[:, :-1]).max() > 1e-3
    else:
      assert diff > 1e-3, (pos, diff)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_each_pos_encoding_is_causal_and_trains_a_step(pos):
  cfg = with_pos(pos)
  params = baselines.init(jax.random.PRNGKey(0), cfg)
  targets = TOKENS % cfg.output_size

  def loss_fn(p):
    logits = baselines.apply(p, TOKENS, cfg)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

  tx = optax.adam(1e-2)
  step = jax.jit(jax.value_and_grad(loss_fn))
  loss, grads = step(params)
  assert np.isfinite(float(loss))
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert float(optax.tree.norm(grads)) > 0
  updates, _ = tx.update(grads, tx.init(params), params)
  assert float(step(optax.apply_updates(params, updates))[0]) < float(loss)

  # causal: logits at t do not depend on tokens after t
  changed = TOKENS.at[:, 4:].set(0)
  np.testing.assert_allclose(
    run(cfg, params, changed)[:, :4], run(cfg, params, TOKENS)[:, :4], atol=1e-6
  )


@pytest.mark.parametrize("pos", ["none", "alibi"])
def test_attention_padding_for_cudnn_changes_nothing(pos):
  """attention_impl='cudnn' pads rows to a multiple of CUDNN_PAD (cuDNN refuses odd lengths in
  training); causal attention makes the padded result equal the unpadded one, here with XLA
  on an odd length (the maze's fixed rows are 145 tokens)."""
  cfg = with_pos(pos)
  q, k, v = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 145, 2, 8))
  want = transformer.attend(q, k, v, cfg)
  assert transformer.attention_impl(cfg, jnp.bfloat16) == (
    "cudnn" if jax.default_backend() == "gpu" else "xla"
  )
  got = transformer.attend(q, k, v, cfg, pad=transformer.CUDNN_PAD)
  assert got.shape == want.shape == (2, 145, 2, 8)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs an NVIDIA GPU")
@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_cudnn_attention_equals_xla_on_an_odd_length(pos):
  """The padded cuDNN path ('auto' in bfloat16 on a GPU) against XLA's attention, outputs and
  gradients, at the maze's fixed L=145 (which cuDNN refuses unpadded) and 4 heads of 32."""
  cfg = with_pos(pos, d_model=128, n_head=4)
  assert transformer.attention_impl(cfg, jnp.bfloat16) == "cudnn"
  q, k, v = jax.random.normal(jax.random.PRNGKey(2), (3, 2, 145, 4, 32), jnp.bfloat16)
  w = jax.random.normal(jax.random.PRNGKey(3), (2, 145, 4, 32))

  def f(impl):
    c = dataclasses.replace(cfg, attention_impl=impl)
    out, vjp = jax.vjp(lambda q, k, v: transformer.attend(q, k, v, c), q, k, v)
    return out, vjp(w.astype(out.dtype))

  f = jax.jit(f, static_argnums=0)
  (o_c, g_c), (o_x, g_x) = f("cudnn"), f("xla")
  assert o_c.shape == (2, 145, 4, 32)
  for a, b in zip((o_c, *g_c), (o_x, *g_x)):
    np.testing.assert_allclose(np.float32(a), np.float32(b), rtol=5e-2, atol=5e-2)
