"""FBAM in PyTorch, for the speed comparison: the same function as rcfam_jax.model.

  python -m rcfam_jax.research.torch_fbam [--mode eager|compiled] [--batch 16] [--seq-len 512]
      [--steps 4] [--frames packed|contract] [field=value ...]
      # field=value: ModelConfig / ExecConfig fields, e.g. head_chunk=32

Written from the model's definition (frame_head.py, lstm.py, model.py), not from the author's
code: cell embedding (codepoint row + position + colour / 255 times six rows), downsample
blocks (RMSNorm, 3x3 conv, GELU, 2x2 average pool), pre-norm attention blocks, the last
position (or mean) as the frame's vector, a residual stack of cuDNN LSTMs with learned (h0, c0),
a linear action head. `FBAM.load_jax(params)` takes rcfam_jax parameters, so both compute the
same function on the same weights (tests/torch_fbam_test.py). Not supported: resets inside a
window (the benchmark's windows have none).

Training step: the author's recompute scheme, what a PyTorch user of his code runs. The frame
head runs forward without a graph, the LSTM and the action head with one; after their backward
the frame head is recomputed and backpropagated `head_chunk` time steps at a time. bf16
autocast on CUDA, cuDNN LSTM, SDPA attention, fused AdamW; --mode compiled applies
torch.compile (default mode) to the frame head. Prints one JSON line (`kind: torch_ref`). torch
is an optional extra (`pip install -e '.[torch]'`); nothing else in rcfam_jax imports it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

try:
  import torch
  import torch.nn.functional as F
  from torch import nn
except ModuleNotFoundError as e:
  raise SystemExit(
    "rcfam_jax.research.torch_fbam needs PyTorch, an optional extra: pip install -e '.[torch]'"
  ) from e

from data_pipelines import codec
from rcfam_jax.config import ExecConfig, ModelConfig, from_dict, parse_overrides


def rms_norm(x, scale, eps):
  """RMSNorm in float32 over the last axis (rcfam_jax.nn.rms_norm); returns x's dtype."""
  y = x.float()
  y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps) * scale
  return y.to(x.dtype)


class Down(nn.Module):
  def __init__(self, cfg: ModelConfig):
    super().__init__()
    d, geglu = cfg.d_model, cfg.downsample_mode == "geglu"
    self.norm = nn.Parameter(torch.ones(d))
    dilation = 1 if geglu else 2  # 'same' output size: padding = dilation
    self.conv = nn.Conv2d(
      d, 2 * d if geglu else d, 3, padding=dilation, dilation=dilation, bias=False
    )
    self.geglu, self.eps = geglu, cfg.rms_eps

  def forward(self, x_NxRxCxD):
    h = rms_norm(x_NxRxCxD, self.norm, self.eps).permute(0, 3, 1, 2)  # NCHW for cuDNN
    y = self.conv(h)
    if self.geglu:
      value, gate = y.chunk(2, dim=1)
      y = value * F.gelu(gate)
    else:
      y = F.gelu(y)
    return F.avg_pool2d(y, 2).permute(0, 2, 3, 1)


class Block(nn.Module):
  def __init__(self, cfg: ModelConfig):
    super().__init__()
    d, bias = cfg.d_model, cfg.attention_bias
    self.norm1, self.norm2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
    self.qkv, self.proj = nn.Linear(d, 3 * d, bias=bias), nn.Linear(d, d, bias=bias)
    self.fc = nn.Linear(d, cfg.mlp_ratio * d, bias=bias)
    self.out = nn.Linear(cfg.mlp_ratio * d, d, bias=bias)
    self.heads, self.eps = cfg.n_head, cfg.rms_eps

  def forward(self, x_NxLxD):
    n, length, d = x_NxLxD.shape
    qkv = self.qkv(rms_norm(x_NxLxD, self.norm1, self.eps))
    q, k, v = qkv.view(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
    a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, length, d)
    x_NxLxD = x_NxLxD + self.proj(a)
    h = self.fc(rms_norm(x_NxLxD, self.norm2, self.eps))
    return x_NxLxD + self.out(F.gelu(h))


class FrameHead(nn.Module):
  def __init__(self, cfg: ModelConfig):
    super().__init__()
    d = cfg.d_model
    self.cp_embed = nn.Parameter(torch.randn(cfg.n_codepoints, d))
    self.pos_embed = nn.Parameter(torch.randn(cfg.rows * cfg.cols, d))
    self.color = nn.Parameter(torch.randn(6, d))
    self.down = nn.ModuleList(Down(cfg) for _ in range(cfg.downsample_blocks))
    self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
    self.cfg = cfg

  def forward(self, frames_NxRxCx7):
    """Contract frames (N, rows, cols, 7) uint8 -> (N, d_model) float32."""
    cfg = self.cfg
    cp = frames_NxRxCx7[..., 0].long().clamp(max=cfg.n_codepoints - 1)
    colour = frames_NxRxCx7[..., 1:].float() / 255.0
    x = F.embedding(cp, self.cp_embed) + colour @ self.color
    x = x + self.pos_embed.view(cfg.rows, cfg.cols, cfg.d_model)
    for down in self.down:
      x = down(x)
    x = x.reshape(x.shape[0], -1, cfg.d_model).float()  # float32 residual stream
    for block in self.blocks:
      x = block(x)
    return (x[:, -1] if cfg.reduction == "last_pos" else x.mean(1)).float()


class FBAM(nn.Module):
  """Frame head -> residual cuDNN LSTM stack -> linear action head (no bias)."""

  def __init__(self, cfg: ModelConfig):
    super().__init__()
    d_in, hidden, layers = cfg.d_model, cfg.lstm_hidden, cfg.lstm_layers
    self.frame_head = FrameHead(cfg)
    self.lstms = nn.ModuleList(nn.LSTM(d_in if i == 0 else hidden, hidden) for i in range(layers))
    self.h0 = nn.Parameter(torch.zeros(layers, hidden))
    self.c0 = nn.Parameter(torch.zeros(layers, hidden))
    self.head = nn.Linear(hidden, cfg.vocab_size, bias=False)
    self.register_buffer("cell_lut", torch.from_numpy(codec.CELL_LUT.copy()), persistent=False)
    self.cfg = cfg

  def contract(self, frames):
    """Packed cells (..., rows, cols) (int16 or wider; data_pipelines.codec) -> contract frames
    (..., rows, cols, 7) uint8 by the codec's table, as rcfam_jax.frame_head.unpack; contract
    frames as they are."""
    return self.cell_lut[frames.long()] if frames.dim() == 4 else frames

  def backbone(self, emb_TxBxD):
    """Embeddings (T, B, D) float32 -> LSTM stack output (T, B, H), from the learned state."""
    b, y = emb_TxBxD.shape[1], emb_TxBxD
    for i, lstm in enumerate(self.lstms):
      state = (self.h0[i].expand(1, b, -1).contiguous(), self.c0[i].expand(1, b, -1).contiguous())
      out, _ = lstm(y, state)
      y = out if i == 0 else y + out
    return y

  def forward(self, frames):
    """Frames (B, T, rows, cols, 7) or packed cells (B, T, rows, cols) -> logits (B, T, V)
    float32; plain autograd."""
    b, t = frames.shape[:2]
    emb = self.frame_head(self.contract(frames).flatten(0, 1)).view(b, t, -1)
    return self.head(self.backbone(emb.transpose(0, 1))).transpose(0, 1).float()

  @torch.no_grad()
  def load_jax(self, params):
    """Copies rcfam_jax.model parameters (a pytree of arrays) into this module."""
    t = lambda a: torch.from_numpy(np.array(a, np.float32))
    fh = params["frame_head"]
    for name in ("cp_embed", "pos_embed", "color"):
      getattr(self.frame_head, name).copy_(t(fh[name]))
    for mod, p in zip(self.frame_head.down, fh["down"], strict=True):
      mod.norm.copy_(t(p["norm"]))
      mod.conv.weight.copy_(t(p["conv"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
    blocks = fh["blocks"]  # stacked on a leading layer axis
    for i, mod in enumerate(self.frame_head.blocks):
      mod.norm1.copy_(t(blocks["norm1"][i]))
      mod.norm2.copy_(t(blocks["norm2"][i]))
      for name in ("qkv", "proj", "fc", "out"):
        getattr(mod, name).weight.copy_(t(blocks[name]["w"][i]).T)
        if "b" in blocks[name]:
          getattr(mod, name).bias.copy_(t(blocks[name]["b"][i]))
    for lstm, p in zip(self.lstms, params["lstm"]["layers"], strict=True):
      lstm.weight_ih_l0.copy_(t(p["w_x"]).T)  # gate order i, f, g, o in both
      lstm.weight_hh_l0.copy_(t(p["w_h"]).T)
      lstm.bias_ih_l0.copy_(t(p["b"]))
      lstm.bias_hh_l0.copy_(t(p["b_h"]) if "b_h" in p else torch.zeros_like(lstm.bias_hh_l0))
    self.h0.copy_(t(params["lstm"]["h0"]))
    self.c0.copy_(t(params["lstm"]["c0"]))
    self.head.weight.copy_(t(params["head"]["w"]).T)
    return self


def train_step(model: FBAM, opt, frames, actions_BxT, chunk: int, autocast: bool):
  """One step in the author's recompute scheme; returns the mean cross-entropy (a tensor).
  frames: (B, T, rows, cols, 7), or packed cells (B, T, rows, cols) unpacked a chunk at a time.

  The gradients equal plain autograd through `model(frames)` (tests/torch_fbam_test.py).
  """
  b, t = actions_BxT.shape
  head = model.frame_head
  spans = [(s, min(s + chunk, t)) for s in range(0, t, chunk)]
  run_head = lambda s, e: head(model.contract(frames[:, s:e]).flatten(0, 1)).view(b, e - s, -1)
  with torch.autocast(frames.device.type, torch.bfloat16, enabled=autocast):
    with torch.no_grad():
      emb = torch.cat([run_head(s, e) for s, e in spans], dim=1).float()
    emb.requires_grad_(True)
    logits = model.head(model.backbone(emb.transpose(0, 1)))  # (T, B, V)
    loss = F.cross_entropy(logits.float().flatten(0, 1), actions_BxT.T.flatten().long())
  loss.backward()
  g_BxTxD = emb.grad
  with torch.autocast(frames.device.type, torch.bfloat16, enabled=autocast):
    for s, e in spans:
      run_head(s, e).float().backward(g_BxTxD[:, s:e])
  if opt is not None:
    opt.step()
    opt.zero_grad(set_to_none=True)
  return loss.detach()


def bench(
  cfg: ModelConfig,
  ex: ExecConfig,
  *,
  batch: int,
  seq_len: int,
  steps: int,
  mode: str,
  packed: bool = True,
):
  """Times `steps` training steps on random frames resident on the GPU (on CPU, without
  autocast, where torch sees none): each step waited for (`step_s`), then the same steps back to
  back with one wait at the end (`pipelined`). The peak includes the frames, as ours does.
  packed: the frames as packed int16 cells (2 bytes a cell, as rcfam_jax's loop feeds them),
  else contract frames (7 bytes a cell)."""
  dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  cuda = dev.type == "cuda"
  torch.manual_seed(0)
  model = FBAM(cfg).to(dev)
  if mode == "compiled":
    model.frame_head = torch.compile(model.frame_head)
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
  rng = np.random.default_rng(0)
  if packed:
    cells = rng.integers(0, len(codec.CELL_LUT), (batch, seq_len, cfg.rows, cfg.cols))
    frames = torch.from_numpy(cells.astype(np.int16))
  else:
    frames = torch.from_numpy(rng.integers(0, 256, (batch, seq_len) + cfg.frame_shape, np.uint8))
  actions = torch.from_numpy(rng.integers(0, cfg.vocab_size, (batch, seq_len), np.int64))
  frames, actions = frames.to(dev), actions.to(dev)
  sync = torch.cuda.synchronize if cuda else lambda: None
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  step = lambda: train_step(model, opt, frames, actions, ex.head_chunk, cuda)
  t0 = time.perf_counter()
  step()
  sync()
  first_s, each = time.perf_counter() - t0, []
  for _ in range(steps):
    t0 = time.perf_counter()
    loss = step()
    sync()
    each.append(time.perf_counter() - t0)
  t0 = time.perf_counter()
  for _ in range(steps):
    loss = step()
  sync()
  piped = (time.perf_counter() - t0) / steps
  med = statistics.median(each)
  return {
    "kind": "torch_ref",
    "impl": f"rcfam_jax.research.torch_fbam ({mode})",
    "mode": mode,
    "T": seq_len,
    "batch": batch,
    "head_chunk": ex.head_chunk,
    "frames": "packed" if packed else "contract",
    "params": sum(p.numel() for p in model.parameters()),
    "step_s": round(med, 4),
    "step_s_each": [round(s, 4) for s in each],
    "frames_per_s": round(batch * seq_len / med, 1),
    "pipelined_frames_per_s": round(batch * seq_len / piped, 1),
    "first_step_s": round(first_s, 2),
    "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
    "loss": round(float(loss), 4),
    "torch": torch.__version__,
    "device": torch.cuda.get_device_name() if cuda else "cpu",
  }


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--mode", choices=("eager", "compiled"), default="compiled")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--seq-len", type=int, default=512)
  p.add_argument("--steps", type=int, default=4)
  p.add_argument("--frames", choices=("packed", "contract"), default="packed")
  p.add_argument("overrides", nargs="*", help="ModelConfig / ExecConfig field=value")
  args = p.parse_args(argv)
  m_over, b_over = parse_overrides(args.overrides)
  cfg, ex = from_dict(ModelConfig, m_over), from_dict(ExecConfig, b_over)
  rec = bench(
    cfg,
    ex,
    batch=args.batch,
    seq_len=args.seq_len,
    steps=args.steps,
    mode=args.mode,
    packed=args.frames == "packed",
  )
  print(json.dumps(rec), flush=True)


if __name__ == "__main__":
  main()
