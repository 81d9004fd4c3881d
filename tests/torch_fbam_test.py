"""The PyTorch FBAM of the speed comparison computes our model's function on our weights.

Runs only where torch is installed (`pip install -e '.[torch]'`); `make test` does not need it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import losses, model
from rcfam_jax.config import ModelConfig

torch = pytest.importorskip("torch")
torch_fbam = pytest.importorskip("rcfam_jax.research.torch_fbam")

SMALL = dict(
  rows=8,
  cols=16,
  n_codepoints=64,  # frames hold codepoints up to 255: clamped alike
  d_model=16,
  n_layer=2,
  n_head=2,
  downsample_blocks=2,
  lstm_hidden=24,
  lstm_layers=2,
  lstm_biases=2,
  vocab_size=32,
  compute_dtype="float32",
)


def _setup(**over):
  cfg = ModelConfig(**{**SMALL, **over})
  params = model.init(jax.random.PRNGKey(3), cfg)
  # Non-zero learned initial state and norm scales, so that loading them is tested too.
  params = jax.tree.map(lambda x: x + 0.05 * jnp.sin(jnp.arange(x.size).reshape(x.shape)), params)
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, (2, 5) + cfg.frame_shape, np.uint8)
  actions = rng.integers(0, cfg.vocab_size, (2, 5), np.int32)
  net = torch_fbam.FBAM(cfg).double().load_jax(params)
  return cfg, params, frames, actions, net.float()


def _jax_loss(params, frames, actions, cfg):
  logits, _ = model.apply(params, frames, model.initial_state(params, 2), cfg=cfg)
  return jnp.mean(losses.cross_entropy(logits, actions)), logits


@pytest.mark.parametrize(
  "over",
  [{}, {"downsample_mode": "geglu", "reduction": "mean", "attention_bias": False}],
  ids=["dilated-last_pos", "geglu-mean-nobias"],
)
def test_same_logits_on_the_same_weights(over):
  cfg, params, frames, actions, net = _setup(**over)
  _, logits = _jax_loss(params, frames, actions, cfg)
  with torch.no_grad():
    got = net(torch.from_numpy(frames)).numpy()
  scale = float(np.abs(logits).max())
  np.testing.assert_allclose(got, np.asarray(logits), atol=2e-5 * scale, rtol=0)


def test_recompute_scheme_gradients_equal_ours():
  """The benchmark's training step (head without a graph, then recomputed per chunk) gives the
  loss and gradients of our model's loss, parameter by parameter."""
  cfg, params, frames, actions, net = _setup()
  (loss, _), grads = jax.value_and_grad(_jax_loss, has_aux=True)(params, frames, actions, cfg)
  got = torch_fbam.train_step(
    net, None, torch.from_numpy(frames), torch.from_numpy(actions), chunk=2, autocast=False
  )
  assert float(got) == pytest.approx(float(loss), rel=1e-5)
  fh, blk = net.frame_head, net.frame_head.blocks[1]
  pairs = {
    "cp_embed": (fh.cp_embed.grad, grads["frame_head"]["cp_embed"]),
    "color": (fh.color.grad, grads["frame_head"]["color"]),
    "conv 0": (
      fh.down[0].conv.weight.grad,
      grads["frame_head"]["down"][0]["conv"].transpose(3, 2, 0, 1),
    ),
    "qkv 1": (blk.qkv.weight.grad, grads["frame_head"]["blocks"]["qkv"]["w"][1].T),
    "norm2 1": (blk.norm2.grad, grads["frame_head"]["blocks"]["norm2"][1]),
    "lstm 1 w_h": (net.lstms[1].weight_hh_l0.grad, grads["lstm"]["layers"][1]["w_h"].T),
    "lstm 0 b_h": (net.lstms[0].bias_hh_l0.grad, grads["lstm"]["layers"][0]["b_h"]),
    "h0": (net.h0.grad, grads["lstm"]["h0"]),
    "head": (net.head.weight.grad, grads["head"]["w"].T),
  }
  for name, (g_torch, g_jax) in pairs.items():
    g_jax = np.asarray(g_jax)
    assert g_torch is not None, name
    err = np.abs(g_torch.numpy() - g_jax).max() / max(np.abs(g_jax).max(), 1e-12)
    assert err < 1e-4, (name, err)


def test_packed_cells_give_the_logits_of_their_contract_frames():
  """The benchmark feeds packed int16 cells (as rcfam_jax's loop feeds uint16 ones): the model
  unpacks them by the codec's table."""
  from data_pipelines import codec

  cfg, _, _, _, net = _setup()
  cells = np.random.default_rng(1).integers(0, len(codec.CELL_LUT), (2, 5, cfg.rows, cfg.cols))
  with torch.no_grad():
    got = net(torch.from_numpy(cells.astype(np.int16))).numpy()
    want = net(torch.from_numpy(codec.CELL_LUT[cells])).numpy()
  np.testing.assert_array_equal(got, want)
