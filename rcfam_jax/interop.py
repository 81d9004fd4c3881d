"""Weights both ways between rcfam_jax and the author's checkpoint format (fbamtrain).

His trainers (the C++ one and the toyimpl, which reads and writes the same file) save one
safetensors file per checkpoint: each parameter as `param/<C++ name>` in the tensorlib layouts,
beside optimizer state under `optim/`, `step_count` and the dataset iterator's state.

  tensors = interop.to_author(params, cfg)    # {'param/frame_head.codepoint_embedding': ...}
  params = interop.from_author(tensors, cfg)  # validates every name and shape first
  python -m rcfam_jax.interop export --workdir W --out model.safetensors
  python -m rcfam_jax.interop import --file model.safetensors \
      --config experiments/fbam_author.py [--config.x.y=v ...] --out DIR

Our leaf (layout) -> his tensor under `param/` (layout); every conversion is exact:
  frame_head/cp_embed (n_codepoints, D)  -> frame_head.codepoint_embedding, the same
  frame_head/pos_embed (R*C, D)          -> frame_head.position_embedding.weight, the same
  frame_head/color[c] (D,), c = 0..5     -> frame_head.{fg,bg}_{r,g,b}_embed, one row each
  frame_head/down/i/norm, conv (3, 3, D, E) HWIO
                                         -> frame_head.downsample_block.i.ln.weight,
                                            .conv.weight (E, 3, 3, D) OHWI
  frame_head/blocks/* [l] (the layer axis of the stacked blocks) -> frame_head.block.l.*:
    norm1, norm2 -> ln1.weight, ln2.weight; qkv, proj w (I, O), b -> attn.w_qkv, w_proj
    (I, O), b_qkv, b_proj; fc, out -> mlp.fc1, mlp.fc2 .weight (I, O), .bias
  lstm/layers/0/w_x, w_h (I, 4H), b, b_h -> action_model.lstm.weights_ih, weights_hh (I, 4H),
                                            bias_ih, bias_hh; gates i f g o in both
  lstm/h0, c0 (1, H)                     -> action_model.lstm.h0, c0 (H,)
  head/w (H, V)                          -> action_model.head.weight (H, V)
Dense weights are (in, out) on both sides (his `Linear`; only the toyimpl's torch modules are
(out, in)). With lstm_biases=1 the export writes bias_ih = b, bias_hh = 0, and the import takes
b = bias_ih + bias_hh: the float32 sum our two-bias model adds in its input projection, so the
function is the same. attention_bias=False exchanges no attention or MLP biases (the toyimpl's
layout; his C++ MLP always has them, so such a C++ file has tensors we lack and is refused).
Configurations his model cannot hold (lstm_layers != 1, lstm_hidden != d_model, mlp_ratio != 4)
raise InteropError. Exports are float32; an import reads the fp32 master copy of a parameter
(`optim/<scope>/<muon|adam>/<name>/master`, written for fp16 parameters) where the file has one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys

import jax
import numpy as np
import safetensors.numpy
from etils import epath

from rcfam_jax import checkpoint, experiment, metrics, model
from rcfam_jax import workdir as workdir_lib
from rcfam_jax.config import ModelConfig

log = logging.getLogger(__name__)

__all__ = [
  "InteropError",
  "author_shapes",
  "to_author",
  "from_author",
  "load_author",
  "save_author",
  "load_params",
  "export",
  "import_",
]

PARAM = "param/"
COLOURS = ("fg_r", "fg_g", "fg_b", "bg_r", "bg_g", "bg_b")  # our colour rows 0..5
# Entries of his files that are no parameters: read past, never an error.
NON_PARAMS = (
  "step_count",
  "dataset_rng_state",
  "dataset_prefetch_indices",
  "dataset_prefetch_starts",
  "dataset_prefetch_buffer_index",
)
_B_HH = "action_model.lstm.bias_hh"
_B_IH = "action_model.lstm.bias_ih"


class InteropError(ValueError):
  """A tensor or configuration that has no counterpart on the other side, named."""


def _check_config(cfg: ModelConfig) -> None:
  why = {
    "lstm_layers": (cfg.lstm_layers == 1, "his action model has one LSTM layer"),
    "lstm_hidden": (
      cfg.lstm_hidden == cfg.d_model,
      f"his LSTM width is n_embed (d_model={cfg.d_model})",
    ),
    "mlp_ratio": (cfg.mlp_ratio == 4, "his MLP hidden width is 4 * n_embed"),
  }
  bad = [f"ModelConfig.{k}={getattr(cfg, k)}: {msg}" for k, (ok, msg) in why.items() if not ok]
  if bad:
    raise InteropError("no counterpart in the author's model: " + "; ".join(bad))


def _entries(cfg: ModelConfig) -> list[tuple[str, tuple, int | None]]:
  """(his name, our leaf path, index into our leaf's first axis or None) per tensor;
  bias_hh of the one-bias form is apart (`to_author`, `from_author`)."""
  fh, lstm = "frame_head", ("lstm", "layers", 0)
  out = [
    (f"{fh}.codepoint_embedding", (fh, "cp_embed"), None),
    (f"{fh}.position_embedding.weight", (fh, "pos_embed"), None),
  ]
  out += [(f"{fh}.{c}_embed", (fh, "color"), i) for i, c in enumerate(COLOURS)]
  for i in range(cfg.downsample_blocks):
    out += [
      (f"{fh}.downsample_block.{i}.ln.weight", (fh, "down", i, "norm"), None),
      (f"{fh}.downsample_block.{i}.conv.weight", (fh, "down", i, "conv"), None),
    ]
  names = {"ln1.weight": ("norm1",), "ln2.weight": ("norm2",)}
  names.update({"attn.w_qkv": ("qkv", "w"), "attn.w_proj": ("proj", "w")})
  names.update({"mlp.fc1.weight": ("fc", "w"), "mlp.fc2.weight": ("out", "w")})
  if cfg.attention_bias:
    names.update({"attn.b_qkv": ("qkv", "b"), "attn.b_proj": ("proj", "b")})
    names.update({"mlp.fc1.bias": ("fc", "b"), "mlp.fc2.bias": ("out", "b")})
  for layer in range(cfg.n_layer):
    out += [(f"{fh}.block.{layer}.{n}", (fh, "blocks", *p), layer) for n, p in names.items()]
  out += [
    ("action_model.lstm.weights_ih", (*lstm, "w_x"), None),
    ("action_model.lstm.weights_hh", (*lstm, "w_h"), None),
    (_B_IH, (*lstm, "b"), None),
  ]
  if cfg.lstm_biases == 2:
    out.append((_B_HH, (*lstm, "b_h"), None))
  out += [
    ("action_model.lstm.h0", ("lstm", "h0"), 0),
    ("action_model.lstm.c0", ("lstm", "c0"), 0),
    ("action_model.head.weight", ("head", "w"), None),
  ]
  return out


def _is_conv(name: str) -> bool:
  return name.endswith(".conv.weight")  # his own rule (toyimpl `_to_cpp_param_layout`)


def _leaves(tree) -> dict[tuple, object]:
  """{path as a tuple of dict keys and list indices: leaf}."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {tuple(getattr(k, "key", getattr(k, "idx", k)) for k in p): x for p, x in flat}


def _show(path: tuple) -> str:
  return "/".join(map(str, path))


def _abstract(cfg: ModelConfig):
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), cfg))


def _layout(leaves: dict, cfg: ModelConfig) -> dict:
  out = {}
  for name, path, index in _entries(cfg):
    x = leaves[path] if index is None else leaves[path][index]
    out[PARAM + name] = x.transpose(3, 0, 1, 2) if _is_conv(name) else x
  if cfg.lstm_biases == 1:
    out[PARAM + _B_HH] = np.zeros(out[PARAM + _B_IH].shape, np.float32)
  return out


def author_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
  """His tensor names (with `param/`) and shapes for a model of `cfg`."""
  _check_config(cfg)
  shapes = jax.eval_shape(lambda p: _layout(_leaves(p), cfg), _abstract(cfg))
  return {k: tuple(v.shape) for k, v in shapes.items()}


def _check_tree(leaves: dict, cfg: ModelConfig) -> None:
  want = {p: tuple(x.shape) for p, x in _leaves(_abstract(cfg)).items()}
  used = {path for _, path, _ in _entries(cfg)}
  problems = [  # an empty leaf (the blocks of n_layer=0) holds nothing to carry over
    f"{_show(p)}: no counterpart in the author's model"
    for p, x in leaves.items()
    if p not in used and math.prod(x.shape)
  ]
  problems += [f"{_show(p)}: missing from params" for p in want if p not in leaves]
  problems += [
    f"{_show(p)}: expected {want[p]}, found {tuple(x.shape)}"
    for p, x in leaves.items()
    if p in want and tuple(x.shape) != want[p]
  ]
  if problems:
    raise InteropError(f"params do not match {cfg}:\n  " + "\n  ".join(problems))


def to_author(params, cfg: ModelConfig) -> dict:
  """Our parameter tree -> {his `param/` name: float32 array} in his layouts.

  Abstract params (jax.ShapeDtypeStruct leaves, e.g. jax.eval_shape of model.init) give
  ShapeDtypeStructs: the names and shapes without any data.
  """
  _check_config(cfg)
  leaves = _leaves(params)
  _check_tree(leaves, cfg)
  if any(isinstance(x, jax.ShapeDtypeStruct) for x in leaves.values()):
    return jax.eval_shape(lambda p: _layout(_leaves(p), cfg), params)
  leaves = {p: np.asarray(jax.device_get(x), np.float32) for p, x in leaves.items()}
  return {k: np.ascontiguousarray(v, np.float32) for k, v in _layout(leaves, cfg).items()}


def _master(tensors: dict, name: str) -> str | None:
  """The key of the fp32 master copy of `param/<name>` in his optimizer state, if any."""
  tail = f"/{name}/master"
  keys = [k for k in tensors if k.startswith("optim/") and k.endswith(tail)]
  return keys[0] if len(keys) == 1 else None


def from_author(tensors: dict, cfg: ModelConfig):
  """His tensors (a checkpoint's entries) -> our parameter tree (float32 numpy arrays).

  Every expected name and shape is checked first; InteropError lists each tensor that is
  missing, misshapen, not floating point, or unexpected. `optim/...` entries and NON_PARAMS are
  read past, except the fp32 masters, which replace their fp16 parameters.
  """
  want = author_shapes(cfg)
  problems, picked = [], {}
  for key, shape in want.items():
    master = _master(tensors, key[len(PARAM) :])
    src = master or key
    x = tensors.get(src)
    if x is None:
      problems.append(f"{key}: expected {shape}, found missing")
    elif tuple(x.shape) != shape:
      problems.append(f"{src}: expected {shape}, found {tuple(x.shape)}")
    elif not np.issubdtype(np.asarray(x).dtype, np.floating):
      problems.append(f"{src}: expected floating point, found {np.asarray(x).dtype}")
    else:
      picked[key] = np.asarray(x, np.float32)
  extra = [k for k in tensors if k not in want and k not in NON_PARAMS]
  problems += [f"{k}: unexpected tensor" for k in extra if not k.startswith("optim/")]
  if problems:
    hint = ""
    if any(k.startswith((f"{PARAM}model/", f"{PARAM}lstm/")) for k in tensors):
      hint = "\n(param/model/... is the toyimpl's own format; only the C++ format is read)"
    raise InteropError(f"the author's tensors do not fit {cfg}:\n  " + "\n  ".join(problems) + hint)
  if cfg.lstm_biases == 1:
    picked[PARAM + _B_IH] = picked[PARAM + _B_IH] + picked.pop(PARAM + _B_HH)
  parts: dict[tuple, dict] = {}
  for name, path, index in _entries(cfg):
    x = picked[PARAM + name]
    parts.setdefault(path, {})[index] = x.transpose(1, 2, 3, 0) if _is_conv(name) else x
  abstract, leaves = _abstract(cfg), {}
  for path, want_leaf in _leaves(abstract).items():
    got = parts.get(path, {})
    if None in got:
      leaves[path] = got[None]
    else:  # rows of a stacked leaf (colours, attention layers, h0/c0); none when n_layer=0
      rows = [got[i] for i in range(want_leaf.shape[0])]
      leaves[path] = np.stack(rows) if rows else np.zeros(want_leaf.shape, np.float32)
  return jax.tree.unflatten(jax.tree.structure(abstract), list(leaves.values()))


def save_author(tensors: dict, path: str, metadata: dict[str, str] | None = None) -> str:
  """Writes `tensors` as safetensors to `path`: a temporary file beside it, renamed when
  complete."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
  try:
    tmp.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    tmp.replace(path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise
  return str(path)


def load_author(path: str, cfg: ModelConfig):
  """Our parameter tree from one of his safetensors files (from_author)."""
  return from_author(safetensors.numpy.load(epath.Path(path).read_bytes()), cfg)


def load_params(path: str, cfg: ModelConfig):
  """Parameters for a model of `cfg` from a .safetensors file in his format or a workdir (its
  newest checkpoint); raises ValueError naming each leaf whose shape differs."""
  if str(path).endswith(".safetensors"):
    return load_author(path, cfg)
  params, src_cfg, _ = workdir_lib.load(path)
  want, got = _leaves(_abstract(cfg)), _leaves(params)
  bad = [
    f"{_show(p)}: expected {tuple(want[p].shape)}, found "
    f"{tuple(got[p].shape) if p in got else 'missing'}"
    for p in want
    if p not in got or tuple(got[p].shape) != tuple(want[p].shape)
  ]
  bad += [f"{_show(p)}: unexpected" for p in got if p not in want]
  if bad:
    raise ValueError(f"the parameters of {path} do not fit {cfg}:\n  " + "\n  ".join(bad))
  if src_cfg != cfg:
    log.info("%s was trained with %s", path, src_cfg)
  return params


def export(workdir: str, out_path: str) -> str:
  """The newest parameters of a training workdir -> his format (float32), with `step_count`."""
  params, cfg, run = workdir_lib.load(workdir)
  tensors = to_author(params, cfg)
  tensors["step_count"] = np.array(run.step, np.uint64)
  meta = {"producer": "rcfam_jax", "model": json.dumps(dataclasses.asdict(cfg))}
  return save_author(tensors, out_path, meta)


def import_(path: str, config, out_dir: str) -> str:
  """His file -> a workdir (config.json, and checkpoints/ holding `params` at step 0) for
  `rcfam_jax.workdir.load`, evaluation, or a new run's `train.init_from`.

  config: the experiment's ConfigDict (`experiment.load`), whose model the file must fit.
  """
  exp = experiment.parse_config(config)
  params = load_author(path, exp.model)
  out = epath.Path(out_dir)
  if (out / "config.json").exists() or (out / "checkpoints").exists():
    raise FileExistsError(f"{out} already holds a workdir; give a new --out")
  out.mkdir(parents=True, exist_ok=True)
  with checkpoint.Checkpointer(str(out / "checkpoints")) as ckpt:
    ckpt.save(0, {"params": params}, force=True)
  metrics.write_text(str(out / "config.json"), config.to_json_best_effort(indent=1))
  return str(out)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(
    prog="python -m rcfam_jax.interop", description=__doc__.split("\n")[0]
  )
  sub = p.add_subparsers(dest="cmd", required=True)
  ex = sub.add_parser("export", help="a workdir's newest parameters -> his safetensors format")
  ex.add_argument("--workdir", required=True)
  ex.add_argument("--out", required=True, help="the .safetensors file to write")
  im = sub.add_parser("import", help="his safetensors file -> a workdir with params at step 0")
  im.add_argument("--file", required=True)
  im.add_argument("--config", required=True, help="experiments/NAME.py[:ARG]; then overrides")
  im.add_argument("--out", required=True, help="the new workdir")
  args, rest = p.parse_known_args(argv)
  if args.cmd == "export":
    if rest:
      p.error(f"unrecognized arguments: {' '.join(rest)}")
    print(export(args.workdir, args.out))
  else:  # the rest are the experiment's overrides (experiment.load names any bad one)
    print(import_(args.file, experiment.load(args.config, rest), args.out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
