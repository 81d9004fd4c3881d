"""The author's checkpoint format both ways: exact round trips, his names and shapes, clear
errors, the export / import CLI and a run started from imported parameters."""

import json
import os

import jax
import ml_collections
import numpy as np
import pytest
from rollout_test import tiny_run

from rcfam_jax import experiment, interop, loop, model
from rcfam_jax import workdir as workdir_lib
from rcfam_jax.config import ModelConfig

SMALL = dict(
  rows=8,
  cols=16,
  d_model=32,
  n_layer=2,
  n_head=2,
  downsample_blocks=1,
  lstm_hidden=32,
  vocab_size=40,
  compute_dtype="float32",
)
QKV = "param/frame_head.block.1.attn.w_qkv"


def _small(**kw):
  cfg = ModelConfig(**{**SMALL, **kw})
  return cfg, model.init(jax.random.PRNGKey(1), cfg)


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def author_table(d, rows, cols, n_cp, down, layers, vocab):
  """His tensor names and shapes, from the constructors in fbamtrain (commit fb6577b):
  src/framehead_model.cpp FrameHeadModule (tables, six colour vectors), FrameHeadConvBlock
  (weight {E, 3, 3, n_embed}, RmsNorm `.ln`), FrameHeadAttentionBlock (ln1, attn, ln2, mlp);
  tensorlib/include/attention.h (Linear qkv and proj renamed w_qkv/b_qkv, w_proj/b_proj),
  mlp.h (fc1 d -> 4d, fc2 4d -> d, always biased), linear.h (weight {in, out}, bias {out}),
  streaming_lstm.h (weights_ih {in, 4H}, weights_hh {H, 4H}, bias_ih, bias_hh, h0, c0 {H});
  src/main_action_model.cpp (StreamingLstm(n_embed, n_embed), head Linear without bias)."""
  fh, t = "frame_head", {}
  t[f"{fh}.codepoint_embedding"] = (n_cp, d)
  t[f"{fh}.position_embedding.weight"] = (rows * cols, d)
  for c in ("fg_r", "fg_g", "fg_b", "bg_r", "bg_g", "bg_b"):
    t[f"{fh}.{c}_embed"] = (d,)
  for i in range(down):
    t[f"{fh}.downsample_block.{i}.ln.weight"] = (d,)
    t[f"{fh}.downsample_block.{i}.conv.weight"] = (d, 3, 3, d)  # OHWC, dilated mode
  for i in range(layers):
    b = f"{fh}.block.{i}"
    t.update({f"{b}.ln1.weight": (d,), f"{b}.ln2.weight": (d,)})
    t.update({f"{b}.attn.w_qkv": (d, 3 * d), f"{b}.attn.b_qkv": (3 * d,)})
    t.update({f"{b}.attn.w_proj": (d, d), f"{b}.attn.b_proj": (d,)})
    t.update({f"{b}.mlp.fc1.weight": (d, 4 * d), f"{b}.mlp.fc1.bias": (4 * d,)})
    t.update({f"{b}.mlp.fc2.weight": (4 * d, d), f"{b}.mlp.fc2.bias": (d,)})
  am = "action_model"
  t[f"{am}.lstm.weights_ih"] = t[f"{am}.lstm.weights_hh"] = (d, 4 * d)
  t[f"{am}.lstm.bias_ih"] = t[f"{am}.lstm.bias_hh"] = (4 * d,)
  t[f"{am}.lstm.h0"] = t[f"{am}.lstm.c0"] = (d,)
  t[f"{am}.head.weight"] = (d, vocab)
  return {"param/" + k: v for k, v in t.items()}


@pytest.mark.parametrize(
  "kw",
  [
    dict(lstm_biases=2),
    dict(lstm_biases=1),
    dict(lstm_biases=1, downsample_mode="geglu", attention_bias=False, n_layer=0),
  ],
)
def test_round_trip_is_exact(kw):
  cfg, params = _small(**kw)
  tensors = interop.to_author(params, cfg)
  assert all(v.dtype == np.float32 for v in tensors.values())
  assert set(tensors) == set(interop.author_shapes(cfg))
  if cfg.lstm_biases == 1:
    assert not np.any(tensors["param/action_model.lstm.bias_hh"])
  conv = tensors["param/frame_head.downsample_block.0.conv.weight"]
  w = np.asarray(params["frame_head"]["down"][0]["conv"])
  np.testing.assert_array_equal(conv[5, 0, 2, 7], w[0, 2, 7, 5])  # [o, ky, kx, i]
  _assert_trees_equal(interop.from_author(tensors, cfg), params)


def test_two_biases_import_into_one_as_their_sum_and_the_same_function():
  cfg2, params2 = _small(lstm_biases=2)
  cfg1 = ModelConfig(**{**SMALL, "lstm_biases": 1})
  tensors = interop.to_author(params2, cfg2)
  params1 = interop.from_author(tensors, cfg1)
  b = params2["lstm"]["layers"][0]
  np.testing.assert_array_equal(params1["lstm"]["layers"][0]["b"], b["b"] + b["b_h"])
  frames = np.asarray(jax.random.randint(jax.random.PRNGKey(2), (1, 3, 8, 16, 7), 0, 256), np.uint8)
  run = lambda p, c: model.apply(p, frames, model.initial_state(p, 1), cfg=c)[0]
  np.testing.assert_array_equal(run(params1, cfg1), run(params2, cfg2))


def test_names_and_shapes_at_the_author_configuration():
  cfg = experiment.parse_config(experiment.load("experiments.fbam_author")).model
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), cfg))
  got = {k: tuple(v.shape) for k, v in interop.to_author(abstract, cfg).items()}
  want = author_table(1024, 48, 160, 256, 2, 3, 20_352)
  assert got == want
  assert sum(int(np.prod(s)) for s in want.values()) == 94_030_848


def test_missing_misshapen_and_unexpected_tensors_are_named():
  cfg, params = _small(lstm_biases=2)
  tensors = interop.to_author(params, cfg)
  missing = {k: v for k, v in tensors.items() if k != QKV}
  with pytest.raises(interop.InteropError, match=rf"{QKV}: expected \(32, 96\), found missing"):
    interop.from_author(missing, cfg)
  with pytest.raises(interop.InteropError, match=rf"{QKV}: expected \(32, 96\), found \(96, 32\)"):
    interop.from_author({**tensors, QKV: tensors[QKV].T}, cfg)
  extra = {**tensors, "param/frame_head.final_norm.weight": np.ones(32, np.float32)}
  with pytest.raises(interop.InteropError, match=r"final_norm.weight: unexpected tensor"):
    interop.from_author(extra, cfg)
  toy = {"param/model/codepoint_embed": np.ones((256, 32), np.float32)}
  with pytest.raises(interop.InteropError, match="toyimpl's own format"):
    interop.from_author(toy, cfg)
  ignored = {
    "step_count": np.array(7, np.uint64),
    "dataset_rng_state": np.array([3], np.uint64),
    "optim/action_model/adam/action_model.lstm.bias_ih/m": np.zeros(128, np.float32),
    "optim/frame_head/adam/__optimizer/step": np.array([7], np.uint64),
  }
  _assert_trees_equal(interop.from_author({**tensors, **ignored}, cfg), params)


def test_fp32_masters_replace_fp16_parameters():
  cfg, params = _small(lstm_biases=2)
  tensors = {k: v.astype(np.float16) for k, v in interop.to_author(params, cfg).items()}
  name = "frame_head.codepoint_embedding"
  master = np.asarray(params["frame_head"]["cp_embed"])
  tensors[f"optim/frame_head/muon/{name}/master"] = master
  got = interop.from_author(tensors, cfg)
  np.testing.assert_array_equal(got["frame_head"]["cp_embed"], master)
  np.testing.assert_array_equal(
    got["frame_head"]["pos_embed"],
    np.asarray(params["frame_head"]["pos_embed"]).astype(np.float16).astype(np.float32),
  )


def test_what_his_model_cannot_hold_is_refused_by_name():
  for kw, field in [
    (dict(lstm_layers=2), "lstm_layers=2"),
    (dict(lstm_hidden=24), "lstm_hidden=24"),
    (dict(mlp_ratio=2), "mlp_ratio=2"),
  ]:
    cfg, params = _small(**kw)
    with pytest.raises(interop.InteropError, match=field):
      interop.to_author(params, cfg)
    with pytest.raises(interop.InteropError, match=field):
      interop.author_shapes(cfg)
  cfg, params = _small()
  params["frame_head"]["final_norm"] = np.ones(32, np.float32)
  with pytest.raises(interop.InteropError, match="frame_head/final_norm: no counterpart"):
    interop.to_author(params, cfg)


def test_cli_export_then_import_gives_the_same_parameters(tmp_path_factory, tmp_path):
  wd, _ = tiny_run(tmp_path_factory)
  f, out = str(tmp_path / "m.safetensors"), str(tmp_path / "imported")
  assert interop.main(["export", "--workdir", wd, "--out", f]) == 0
  assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left
  args = ["import", "--file", f, "--config", "experiments.smoke", "--config.train.steps=3"]
  assert interop.main([*args, "--out", out]) == 0
  want, got = workdir_lib.load(wd), workdir_lib.load(out)
  _assert_trees_equal(got.params, want.params)
  assert got.run.step == 0 and got.cfg == want.cfg and got.run.exp.train.steps == 3
  with pytest.raises(FileExistsError):
    interop.main([*args, "--out", out])


@pytest.mark.parametrize("source", ["file", "workdir"])
def test_a_run_started_with_init_from_begins_from_those_parameters(
  source, tmp_path_factory, tmp_path
):
  wd, _ = tiny_run(tmp_path_factory)
  path = wd
  if source == "file":
    path = interop.export(wd, str(tmp_path / "m.safetensors"))
  with open(os.path.join(wd, "config.json")) as fh:
    c = ml_collections.ConfigDict(json.load(fh))
  c.train.init_from = path
  new = str(tmp_path / "new")
  loop.train_and_evaluate(c, new, stop_after=0)  # saves its step 0
  got = workdir_lib.load(new)
  assert got.run.step == 0
  _assert_trees_equal(got.params, workdir_lib.load(wd).params)


def test_init_from_a_workdir_of_another_shape_names_the_leaf(tmp_path_factory):
  wd, _ = tiny_run(tmp_path_factory)
  cfg = workdir_lib.read_config(wd).model
  other = ModelConfig(**{**cfg.__dict__, "vocab_size": cfg.vocab_size + 8})
  with pytest.raises(ValueError, match=r"head/w: expected \(16, 136\), found \(16, 128\)"):
    interop.load_params(wd, other)
