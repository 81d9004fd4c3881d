"""Golden outputs of the author's PyTorch model (fbamtrain's toyimpl) on weights we export.

Two steps, on two environments (neither needs the other's packages):

  # 1. rcfam_jax (JAX, no torch): a tiny model, its weights in the author's names and layouts
  #    (rcfam_jax.interop) and random frames.
  python tools/author_golden.py inputs --out tests/golden/author_tiny
  # 2. torch + a checkout of github.com/mikex86/fbamtrain (no JAX): the author's FrameHeadModule,
  #    torch.nn.LSTM and head, loaded by his own loader, run on those frames in float32 on CPU.
  python tools/author_golden.py golden --author PATH/fbamtrain --inputs tests/golden/author_tiny

Step 1 writes DIR.safetensors (the weights, as `python -m rcfam_jax.interop export` writes them)
and DIR.inputs.npz (frames, config); step 2 writes DIR.npz: the frame embeddings (B, T, D), the
LSTM's outputs h (T, B, H) and final (h, c), the logits (T, B, V), the inputs again, and metadata
(the author's commit, the command, torch's version). tests/author_golden_test.py runs our model
on the same weights and frames and compares. The author's code is imported from the checkout,
never copied: main.py's recording reader (pytermstreamxz, a C++ extension) is not needed for
this and is replaced by an empty module before the import.
"""

import argparse
import json
import os
import subprocess
import sys
import types

import numpy as np

# The tiny configuration (the author's constraints: LSTM width = d_model, vocabulary a multiple
# of 8, two LSTM biases).
TINY = dict(
  rows=8,
  cols=16,
  d_model=16,
  n_layer=2,
  n_head=2,
  mlp_ratio=4,
  downsample_blocks=2,
  downsample_mode="dilated",
  attention_bias=True,
  reduction="last_pos",
  lstm_hidden=16,
  lstm_layers=1,
  lstm_biases=2,
  n_codepoints=128,
  vocab_size=24,
  compute_dtype="float32",
  rms_eps=1e-5,
)
BATCH, STEPS = 2, 5


def _inputs(out: str, seed: int) -> None:
  import jax

  from rcfam_jax import interop, model
  from rcfam_jax.config import ModelConfig

  cfg = ModelConfig(**TINY)
  params = model.init(jax.random.PRNGKey(seed), cfg)
  # Norm scales, biases and (h0, c0) start at 0 or 1: perturb every leaf so that a swapped or
  # ignored parameter changes the outputs.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
  params = jax.tree.unflatten(tree, leaves)
  interop.save_author(interop.to_author(params, cfg), f"{out}.safetensors")
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 256, (BATCH, STEPS, cfg.rows, cfg.cols, 7), dtype=np.uint8)
  frames[..., 0] = rng.integers(32, 127, frames.shape[:-1])  # printable codepoints
  frames[0, 0, 0, :4, 0] = 255  # beyond n_codepoints: clamped to the last row
  np.savez(f"{out}.inputs.npz", frames=frames, config=json.dumps(TINY))
  print(f"wrote {out}.safetensors and {out}.inputs.npz")


def _author_modules(author: str):
  import torch

  src = os.path.join(author, "toyimpl", "src")
  if not os.path.isfile(os.path.join(src, "model.py")):
    raise SystemExit(f"{author}: no toyimpl/src/model.py; give a checkout of fbamtrain")
  sys.path.insert(0, src)
  stub = types.ModuleType("pytermstreamxz")  # the recording reader: not used here
  for name in ("FileInputStream", "TermInflateStream", "TerminalFrame"):
    setattr(stub, name, type(name, (), {}))
  sys.modules.setdefault("pytermstreamxz", stub)
  import init_utils
  import main as author_main
  import model as author_model

  # His initialisers are CUDA kernels; every parameter is overwritten by the loaded weights, so
  # torch's CPU fills stand in for them while the modules are built.
  init_utils.init_normal = lambda t, mean, std, seed: torch.nn.init.normal_(t, mean, std)
  init_utils.init_kaiming_uniform = lambda t, fan_in, seed: torch.nn.init.uniform_(t, -1, 1)
  return author_model, author_main


def _cell_states(frames: np.ndarray, max_code_point: int) -> np.ndarray:
  """Our (..., R, C, 7) uint8 cells -> his (..., R, C, 3) codepoint, 0xRRGGBB fg, 0xRRGGBB bg,
  codepoints clamped to max_code_point - 1 as his loader (main.py prepare_cell_states) does."""
  f = frames.astype(np.uint32)
  pack = lambda c: (f[..., c] << 16) | (f[..., c + 1] << 8) | f[..., c + 2]
  cp = np.minimum(f[..., 0], max_code_point - 1)
  return np.stack([cp, pack(1), pack(4)], axis=-1)


def _golden(author: str, inputs: str) -> None:
  import torch
  from safetensors.torch import load_file

  author_model, author_main = _author_modules(author)
  torch.manual_seed(0)
  data = np.load(f"{inputs}.inputs.npz")
  frames, c = data["frames"], json.loads(str(data["config"]))
  cfg = types.SimpleNamespace(
    frame_rows=c["rows"],
    frame_cols=c["cols"],
    n_embed=c["d_model"],
    max_code_point=c["n_codepoints"],
    frame_head_reduction_strategy=c["reduction"],
    n_layer=c["n_layer"],
    n_head=c["n_head"],
    bias=c["attention_bias"],
    downsample_blocks=c["downsample_blocks"],
    rms_norm_eps=c["rms_eps"],
    downsample_conv_mode=c["downsample_mode"],
    downsample_conv_dilation=2,
    model_init_seed=0,
  )
  cpu, f32, d = torch.device("cpu"), torch.float32, c["d_model"]
  head_module = author_model.FrameHeadModule(cfg, f32, cpu, use_autograd_cell_embeds=True)
  lstm = torch.nn.LSTM(input_size=d, hidden_size=d, batch_first=False, bias=True, dtype=f32)
  head = torch.nn.Linear(d, c["vocab_size"], bias=False, dtype=f32)
  h0 = torch.nn.Parameter(torch.zeros((d,), dtype=f32))
  c0 = torch.nn.Parameter(torch.zeros((d,), dtype=f32))
  bindings = author_main._build_cpp_param_bindings(head_module, lstm, head, h0, c0)
  author_main._load_cpp_checkpoint_params(load_file(f"{inputs}.safetensors"), bindings)
  b, t = frames.shape[:2]
  with torch.no_grad():
    cells = torch.from_numpy(_cell_states(frames, c["n_codepoints"]).astype(np.int32))
    emb = head_module(cells.reshape((b * t,) + cells.shape[2:])).reshape(b, t, d)
    x = emb.transpose(0, 1).contiguous()  # (T, B, D), his LSTM's batch_first=False
    y, (h_n, c_n) = lstm(x, (h0.view(1, 1, d).expand(1, b, d), c0.view(1, 1, d).expand(1, b, d)))
    logits = head(y.reshape(-1, d)).reshape(t, b, -1)
  commit = subprocess.run(
    ["git", "-C", author, "rev-parse", "HEAD"], capture_output=True, text=True
  ).stdout.strip()
  meta = {
    "author_repository": "github.com/mikex86/fbamtrain",
    "author_commit": commit or "unknown (not a git checkout)",
    "command": " ".join(["python", *sys.argv]),
    "torch": torch.__version__,
    "device": "cpu, float32",
  }
  np.savez_compressed(
    f"{inputs}.npz",
    frames=frames,
    config=json.dumps(c),
    emb_BxTxD=emb.numpy(),
    y_TxBxH=y.numpy(),
    h_BxH=h_n[0].numpy(),
    c_BxH=c_n[0].numpy(),
    logits_TxBxV=logits.numpy(),
    meta=json.dumps(meta),
  )
  print(f"wrote {inputs}.npz: {json.dumps(meta)}")


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = p.add_subparsers(dest="cmd", required=True)
  a = sub.add_parser("inputs", help="rcfam_jax side: tiny weights (author layout) and frames")
  a.add_argument("--out", required=True, help="path prefix, e.g. tests/golden/author_tiny")
  a.add_argument("--seed", type=int, default=0)
  g = sub.add_parser("golden", help="torch side: the author's model on those weights and frames")
  g.add_argument("--author", required=True, help="a checkout of github.com/mikex86/fbamtrain")
  g.add_argument("--inputs", required=True, help="the prefix given to `inputs --out`")
  args = p.parse_args(argv)
  if args.cmd == "inputs":
    _inputs(args.out, args.seed)
  else:
    _golden(args.author, args.inputs)


if __name__ == "__main__":
  main()
