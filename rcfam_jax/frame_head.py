"""Frame head: a terminal frame (grid of cells) -> one d-vector.

cells -> embedding (codepoint + position + colour) -> downsample blocks (RMSNorm, dilated 3x3
conv, GELU, 2x2 average pool) -> pre-norm transformer blocks with full attention -> reduction.
Every frame is independent, so the head runs over all B*T frames in parallel, outside the
LSTM's time scan.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from data_pipelines import codec
from rcfam_jax import nn
from rcfam_jax.config import N_CHANNELS, ExecConfig, ModelConfig, check_exec

# What ExecConfig.head_remat keeps of a checkpointed head chunk (jax.checkpoint names).
SAVEABLE = {"convs": ("head_conv",), "matmuls": ("head_conv", "head_dense")}


def init(key, cfg: ModelConfig):
  d, hidden = cfg.d_model, cfg.mlp_ratio * cfg.d_model
  k_cp, k_pos, k_col, k_down, k_blocks = jax.random.split(key, 5)
  normal = lambda k, shape: jax.random.normal(k, shape, jnp.float32)

  d_conv = 2 * d if cfg.downsample_mode == "geglu" else d
  bias = cfg.attention_bias

  def down_init(k):
    return {
      "norm": jnp.ones((d,), jnp.float32),
      "conv": nn.uniform(k, (3, 3, d, d_conv), 1.0 / math.sqrt(9 * d)),
    }

  def block_init(k):
    kq, kp, kf, ko = jax.random.split(k, 4)
    return {
      "norm1": jnp.ones((d,), jnp.float32),
      "qkv": nn.dense_init(kq, d, 3 * d, bias=bias),
      "proj": nn.dense_init(kp, d, d, bias=bias),
      "norm2": jnp.ones((d,), jnp.float32),
      "fc": nn.dense_init(kf, d, hidden, bias=bias),
      "out": nn.dense_init(ko, hidden, d, bias=bias),
    }

  return {
    "cp_embed": normal(k_cp, (cfg.n_codepoints, d)),
    "pos_embed": normal(k_pos, (cfg.rows * cfg.cols, d)),
    "color": normal(k_col, (N_CHANNELS - 1, d)),
    "down": [down_init(k) for k in jax.random.split(k_down, cfg.downsample_blocks)],
    # Attention blocks are stacked on a leading layer axis (one array per parameter).
    "blocks": jax.vmap(block_init)(jax.random.split(k_blocks, cfg.n_layer)),
  }


def is_packed(frames, cfg: ModelConfig) -> bool:
  """Whether `frames` are packed cells (..., rows, cols) uint16 rather than contract frames."""
  shape = tuple(getattr(frames, "shape", ()))
  return frames.dtype == jnp.uint16 and shape[-2:] == (cfg.rows, cfg.cols)


def unpack(cells):
  """Packed cells (..., rows, cols) uint16 (`codepoint | style << 7`, data_pipelines.codec) ->
  contract frames (..., rows, cols, 7) uint8: one table gather, on the device."""
  return jnp.take(jnp.asarray(codec.CELL_LUT), cells.astype(jnp.int32), axis=0)


def check_frames(frames, cfg: ModelConfig):
  """Raises ValueError unless `frames` are integer contract frames (..., rows, cols, 7) or
  packed cells (..., rows, cols) uint16."""
  shape = tuple(getattr(frames, "shape", ()))
  if is_packed(frames, cfg):
    return
  expected = cfg.frame_shape
  if len(shape) < 3 or shape[-3:] != expected:
    raise ValueError(
      f"frames have shape {shape}; expected (..., {expected[0]}, {expected[1]}, {expected[2]}) "
      f"= (..., rows, cols, [codepoint, fg R, G, B, bg R, G, B]) for this ModelConfig "
      f"(rows={cfg.rows}, cols={cfg.cols}), or packed uint16 cells (..., rows, cols); render "
      f"frames at that size or change the config"
    )
  if not jnp.issubdtype(frames.dtype, jnp.integer):
    raise ValueError(f"frames must hold integer cells (uint8 or int32), got dtype {frames.dtype}")


def embed_cells(params, frames_NxRxCx7, cfg: ModelConfig, parity: bool = False):
  """E_cp[codepoint] + P[row, col] + sum_c (colour_c / 255) u_c, in the compute dtype.

  Forward: a gather of the codepoint rows plus the six colour terms (one fusion, no one-hot
  matrix). Backward: the table gradient as one matmul, [one_hot(cp), colour/255]^T g, not a
  scatter-add into 256 rows that 10^6 cells contend for. Codepoints >= n_codepoints are clamped
  to the last row, as the author's loaders clamp them before his embedding.
  parity: the cells in the parity layout of `to_parity`, (N*4, R/2, C/2, D): the frames and
  the position table are permuted (a few bytes a cell) instead of the D-wide embedding.
  """
  dt = jnp.dtype(cfg.compute_dtype)
  pos_RxCxD = params["pos_embed"].reshape(cfg.rows, cfg.cols, cfg.d_model)
  if parity:
    frames_NxRxCx7 = to_parity(frames_NxRxCx7)
    pos_RxCxD = to_parity(pos_RxCxD[None])  # (4, R/2, C/2, D): one grid per parity class
  colour = frames_NxRxCx7[..., 1:].astype(dt) * jnp.asarray(1.0 / 255.0, dt)
  table = jnp.concatenate([params["cp_embed"], params["color"]], axis=0).astype(dt)
  cp = jnp.clip(frames_NxRxCx7[..., 0].astype(jnp.int32), 0, cfg.n_codepoints - 1)
  x = _lookup(table, cp, colour)
  if parity:
    shape = x.shape
    x = (x.reshape((-1, 4) + shape[1:]) + pos_RxCxD).reshape(shape)
  else:
    x = x + pos_RxCxD
  return x.astype(dt)


@jax.custom_vjp
def _lookup(table, cp_x, colour_x6):
  """table[cp] + colour @ table[-6:], in float32: `table` holds the n_codepoints codepoint rows
  then the six colour rows, (n_codepoints + 6, D); `cp` any shape, `colour_x6` (cp.shape, 6)."""
  n_cp = table.shape[0] - colour_x6.shape[-1]
  x = jnp.take(table[:n_cp], cp_x, axis=0, mode="fill", fill_value=0).astype(jnp.float32)
  for c in range(colour_x6.shape[-1]):  # six multiply-adds, fused with the gather
    x = x + colour_x6[..., c : c + 1].astype(jnp.float32) * table[n_cp + c].astype(jnp.float32)
  return x


def _lookup_fwd(table, cp_x, colour_x6):
  return _lookup(table, cp_x, colour_x6), (table, cp_x, colour_x6)


def _lookup_bwd(res, g_xD):
  table, cp_x, colour_x6 = res
  dt = table.dtype
  n_cp = table.shape[0] - colour_x6.shape[-1]
  a = jnp.concatenate([jax.nn.one_hot(cp_x, n_cp, dtype=dt), colour_x6.astype(dt)], axis=-1)
  _, pull = jax.vjp(lambda t: nn.matmul(a, t, dt), table)  # the one-hot matmul's gradient
  return (pull(g_xD)[0], np.zeros(cp_x.shape, jax.dtypes.float0), jnp.zeros_like(colour_x6))


_lookup.defvjp(_lookup_fwd, _lookup_bwd)


def attention_block(p, x_NxLxD, cfg: ModelConfig, impl: str | None = "auto"):
  """One pre-norm transformer block (full attention, GELU MLP) on the fp32 residual stream."""
  dt = jnp.dtype(cfg.compute_dtype)
  n, length, d = x_NxLxD.shape
  heads = cfg.n_head
  h = nn.rms_norm(p["norm1"], x_NxLxD, cfg.rms_eps)
  qkv = checkpoint_name(nn.dense(p["qkv"], h, dt, out_dtype=dt), "head_dense")
  qkv = qkv.reshape(n, length, 3, heads, d // heads)
  a = nn.attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], impl)
  proj = nn.dense(p["proj"], a.reshape(n, length, d), dt)
  x_NxLxD = x_NxLxD + checkpoint_name(proj, "head_dense")
  h = nn.rms_norm(p["norm2"], x_NxLxD, cfg.rms_eps)
  fc = checkpoint_name(nn.dense(p["fc"], h, dt, out_dtype=dt), "head_dense")  # (N, L, 4D)
  return x_NxLxD + checkpoint_name(nn.dense(p["out"], nn.gelu(fc), dt), "head_dense")


def _columns(p, lo: int, hi: int):
  """A dense layer's output columns lo:hi (weight and bias)."""
  return {k: (v[:, lo:hi] if k == "w" else v[lo:hi]) for k, v in p.items()}


def last_position_block(p, x_NxLxD, cfg: ModelConfig):
  """attention_block's output at the last position only, (N, D): keys and values of every
  token, the query, projection and MLP of the last one. What the 'last_pos' reduction keeps of
  the last block, for about a sixth of its FLOPs (the author's model computes every position)."""
  dt = jnp.dtype(cfg.compute_dtype)
  n, length, d = x_NxLxD.shape
  heads = cfg.n_head
  h = nn.rms_norm(p["norm1"], x_NxLxD, cfg.rms_eps)
  kv = checkpoint_name(nn.dense(_columns(p["qkv"], d, 3 * d), h, dt, out_dtype=dt), "head_dense")
  kv = kv.reshape(n, length, 2, heads, d // heads)
  q = nn.dense(_columns(p["qkv"], 0, d), h[:, -1:], dt, out_dtype=dt)
  # One query per frame: XLA's attention (cuDNN's flash kernel needs as many queries as keys).
  a = nn.attention(q.reshape(n, 1, heads, d // heads), kv[:, :, 0], kv[:, :, 1], None)
  x_NxD = x_NxLxD[:, -1] + nn.dense(p["proj"], a.reshape(n, d), dt)
  fc = nn.dense(p["fc"], nn.rms_norm(p["norm2"], x_NxD, cfg.rms_eps), dt, out_dtype=dt)
  return x_NxD + nn.dense(p["out"], nn.gelu(fc), dt)


def resolved_conv_impl(ex: ExecConfig, cfg: ModelConfig) -> str:
  """ex.conv_impl with 'auto' resolved: shifted matmuls on CPU; elsewhere the parity rewrite of
  the dilated conv (1.3x cuDNN's dilated kernels on an H200, docs/BENCHMARKS.md), cuDNN's
  undilated conv for geglu."""
  if ex.conv_impl != "auto":
    return ex.conv_impl
  if jax.default_backend() == "cpu":
    return "matmul"
  return "parity" if cfg.downsample_mode == "dilated" else "xla"


def to_parity(x_NxRxCxD):
  """(N, R, C, D) -> (N*4, R/2, C/2, D): the four (row, col)-parity sub-grids of each image."""
  n, r, c, d = x_NxRxCxD.shape
  x = x_NxRxCxD.reshape(n, r // 2, 2, c // 2, 2, d).transpose(0, 2, 4, 1, 3, 5)
  return x.reshape(n * 4, r // 2, c // 2, d)


# Most images per parity convolution. On an H200 (jax 0.11.2) XLA compiled the parity conv's
# forward and backward (12x40 images, 512 channels, bf16) in 8.7 s at 2,048 images and had not
# finished compiling after 75 s at 3,072 or 4,096 (docs/BENCHMARKS.md, the parity stall); larger
# batches are therefore convolved 2,048 images at a time.
PARITY_MAX_IMAGES = 2048


def conv(w_3x3xDxE, x_NxRxCxD, dt, conv_impl: str, dilation: int = 2):
  """A downsample block's 3x3 conv as conv_impl runs it; 'parity' (dilation 2 only) returns it
  on the four parity sub-grids, (N*4, R/2, C/2, E) (see downsample)."""
  if conv_impl == "parity":
    return conv_parity(w_3x3xDxE, to_parity(x_NxRxCxD), dt)
  return nn.conv3x3_dilated(w_3x3xDxE, x_NxRxCxD, dt, dilation=dilation, impl=conv_impl)


def conv_parity(w_3x3xDxE, x_MxRxCxD, dt):
  """The undilated 3x3 conv of images in the parity layout, at most PARITY_MAX_IMAGES images
  per convolution."""
  one = lambda x_RxCxD: nn.conv3x3_dilated(w_3x3xDxE, x_RxCxD[None], dt, dilation=1, impl="xla")[0]
  if x_MxRxCxD.shape[0] <= PARITY_MAX_IMAGES:
    return jax.vmap(one)(x_MxRxCxD)
  return jax.lax.map(one, x_MxRxCxD, batch_size=PARITY_MAX_IMAGES)  # a loop over groups


def downsample(p, x_NxRxCxD, cfg: ModelConfig, conv_impl: str, in_parity: bool = False):
  """RMSNorm -> 3x3 conv -> GELU -> 2x2 average pool: (N, R, C, D) -> (N, R/2, C/2, D).

  downsample_mode 'dilated': conv with dilation 2 to D channels, GELU; 'geglu' (the author's
  other mode): undilated conv to 2D channels split into value and gate, value * GELU(gate).
  conv_impl 'parity': a dilation-2 tap never leaves its pixel's (row, col) parity class, so the
  conv runs undilated (padding 1) on the four parity sub-grids as N*4 half-size images, and the
  2x2 pool, which takes one pixel of each class, is then the mean over the four: the same
  function, with cuDNN's undilated 3x3 kernels in place of its dilated ones. in_parity: x is
  already in that layout, (N*4, R/2, C/2, D) (embed_cells(parity=True)); RMSNorm, per cell,
  commutes with the permutation.
  """
  dt = jnp.dtype(cfg.compute_dtype)
  if conv_impl == "parity":
    x = x_NxRxCxD if in_parity else to_parity(x_NxRxCxD)
    y = checkpoint_name(
      conv_parity(p["conv"], nn.rms_norm(p["norm"], x, cfg.rms_eps), dt), "head_conv"
    )
    y = nn.gelu(y)
    m, r2, c2, d = y.shape
    return y.reshape(m // 4, 4, r2, c2, d).mean(axis=1, dtype=jnp.float32).astype(y.dtype)
  geglu = cfg.downsample_mode == "geglu"
  h = nn.rms_norm(p["norm"], x_NxRxCxD, cfg.rms_eps)
  y = checkpoint_name(conv(p["conv"], h, dt, conv_impl, dilation=1 if geglu else 2), "head_conv")
  if geglu:
    value, gate = jnp.split(y, 2, axis=-1)
    y = value * nn.gelu(gate)
  else:
    y = nn.gelu(y)
  return nn.avg_pool2x2(y)


def apply(params, frames, cfg: ModelConfig, ex: ExecConfig = ExecConfig()):
  """frames (..., rows, cols, 7) integer or packed cells (..., rows, cols) uint16 ->
  embeddings (..., d_model) float32. Of `ex`: conv_impl, attention_impl, layer_remat."""
  check_frames(frames, cfg)
  check_exec(cfg, ex)
  if is_packed(frames, cfg):
    frames = unpack(frames)
  lead = frames.shape[:-3]
  frames_NxRxCx7 = frames.reshape((int(np.prod(lead, dtype=np.int64)),) + cfg.frame_shape)
  impl = resolved_conv_impl(ex, cfg)
  parity = impl == "parity" and cfg.downsample_blocks > 0  # the first block's layout from the start
  x = embed_cells(params, frames_NxRxCx7, cfg, parity)  # full resolution, compute dtype
  for i, p in enumerate(params["down"]):
    x = downsample(p, x, cfg, impl, in_parity=parity and i == 0)
  n = x.shape[0]
  x_NxLxD = x.reshape(n, -1, cfg.d_model).astype(jnp.float32)  # fp32 residual stream

  return attention_stack(params["blocks"], x_NxLxD, cfg, ex).reshape(lead + (cfg.d_model,))


def attention_stack(blocks, x_NxLxD, cfg: ModelConfig, ex: ExecConfig):
  """The attention blocks and the reduction -> (N, D). With 'last_pos' the last block runs at
  the last position only (last_position_block). The blocks are unrolled, not scanned: a scan's
  backward stacks each layer's residuals into one buffer and copies them back out (copy and
  update-slice kernels: 3.2 of the stack's 13.6 ms per 512 frames in docs/BENCHMARKS.md's
  profile)."""
  impl = ex.attention_impl
  remat = (lambda f: jax.checkpoint(f, prevent_cse=False)) if ex.layer_remat else (lambda f: f)
  block = remat(lambda p, x: attention_block(p, x, cfg, impl))
  layer = lambda i: jax.tree.map(lambda a: a[i], blocks)
  last = cfg.reduction == "last_pos" and cfg.n_layer > 0
  for i in range(cfg.n_layer - 1 if last else cfg.n_layer):
    x_NxLxD = block(layer(i), x_NxLxD)
  if last:
    return remat(lambda p, x: last_position_block(p, x, cfg))(layer(-1), x_NxLxD)
  return x_NxLxD[:, -1] if cfg.reduction == "last_pos" else x_NxLxD.mean(axis=1)
