"""Our model against the author's PyTorch model (fbamtrain's toyimpl) on the same weights and
frames: tests/golden/author_tiny.npz holds his outputs, written by tools/author_golden.py from
the weights in tests/golden/author_tiny.safetensors (his checkpoint names and layouts). No torch
is needed here."""

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import interop, model
from rcfam_jax.config import ExecConfig, ModelConfig

GOLDEN = pathlib.Path(__file__).parent / "golden" / "author_tiny"
TOL = dict(rtol=1e-5, atol=5e-6)  # float32 rounding (summation order)


@pytest.fixture(scope="module")
def ours():
  g = np.load(f"{GOLDEN}.npz")
  cfg = ModelConfig(**json.loads(str(g["config"])))
  params = interop.load_author(f"{GOLDEN}.safetensors", cfg)
  frames = jnp.asarray(g["frames"])
  # Plain float32 execution: XLA's convolution and attention, no chunking.
  ex = ExecConfig(conv_impl="xla", attention_impl="xla", head_chunk=frames.shape[1])
  emb_TxBxD = model.embed(params, frames, cfg, ex)
  state0 = model.initial_state(params, frames.shape[0])
  y_TxBxH, state = model.backbone(params, emb_TxBxD, state0, cfg=cfg, ex=ex)
  out = {
    "emb_BxTxD": emb_TxBxD.swapaxes(0, 1),
    "y_TxBxH": y_TxBxH,
    "h_BxH": state.h[0],
    "c_BxH": state.c[0],
    "logits_TxBxV": model.logits(params, y_TxBxH),
  }
  return g, {k: np.asarray(v) for k, v in out.items()}


def test_the_golden_file_records_its_origin(ours):
  g, _ = ours
  meta = json.loads(str(g["meta"]))
  assert meta["author_repository"] == "github.com/mikex86/fbamtrain"
  assert meta["author_commit"].startswith("fb6577b")
  assert "tools/author_golden.py golden" in meta["command"]


@pytest.mark.parametrize("name", ["emb_BxTxD", "y_TxBxH", "h_BxH", "c_BxH", "logits_TxBxV"])
def test_matches_the_authors_model(ours, name):
  g, out = ours
  assert out[name].shape == g[name].shape
  np.testing.assert_allclose(out[name], g[name], **TOL)


def test_the_lstm_alone_matches_on_his_embeddings(ours):
  """His frame embeddings through our LSTM and head: the recurrence on its own."""
  g, _ = ours
  cfg = ModelConfig(**json.loads(str(g["config"])))
  params = interop.load_author(f"{GOLDEN}.safetensors", cfg)
  emb_TxBxD = jnp.asarray(g["emb_BxTxD"]).swapaxes(0, 1)
  state0 = model.initial_state(params, emb_TxBxD.shape[1])
  y_TxBxH, _ = model.backbone(params, emb_TxBxD, state0, cfg=cfg)
  np.testing.assert_allclose(y_TxBxH, g["y_TxBxH"], **TOL)
  np.testing.assert_allclose(model.logits(params, y_TxBxH), g["logits_TxBxV"], **TOL)
