"""Where the training step's time goes: the frame head's parts, each timed on its own.

One head chunk as the step runs it (head_chunk x batch frames, compute dtype and conv/attention
implementations of the config), per part: forward and forward+backward (VJP with a random
cotangent) in ms, matmul FLOPs and the TFLOP/s they reach. Parts: cell embedding, each
downsample block (and its bare dilated convolution), the attention stack, the whole head.
The head's cost per trained frame is fwd (the remat recompute) + fwd+bwd; `head_bound` turns it
into the frames/s the step could reach if nothing but the head took time.

Job fields: batch, chunk, reps, m (ModelConfig overrides).
"""

from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp

from rcfam_jax import frame_head
from rcfam_jax.research.bench import common


def _time(fn, args, reps):
  """Median ms of fwd and of fwd+bwd (VJP pulled back with a random cotangent)."""
  fwd = jax.jit(fn)
  out = fwd(*args)
  ct = jax.tree.map(lambda o: jax.random.normal(jax.random.PRNGKey(9), o.shape, o.dtype), out)

  @jax.jit
  def fwd_bwd(ct, *a):  # ct an argument: closed over, it would be a (GB-sized) constant
    y, pull = jax.vjp(fn, *a)
    return y, pull(ct)

  f = statistics.median(common.time_fn(lambda: fwd(*args), reps))
  fb = statistics.median(common.time_fn(lambda: fwd_bwd(ct, *args), reps))
  return f * 1e3, fb * 1e3


def _parts(params, cfg, ex, frames):
  """[(label, fn, args, forward matmul FLOPs)] in the order the head runs them."""
  dt = jnp.dtype(cfg.compute_dtype)
  impl = frame_head.resolved_conv_impl(ex, cfg)
  n, d = frames.shape[0], cfg.d_model
  embed = lambda p, frames: frame_head.embed_cells(p, frames, cfg)
  out = [("embed cells", embed, (params, frames), 0.0)]
  x = frame_head.embed_cells(params, frames, cfg)
  r, c = cfg.rows, cfg.cols
  block = lambda p, x: frame_head.downsample(p, x, cfg, impl)
  conv = lambda w, x: frame_head.conv(w, x, dt, impl)
  for i, p in enumerate(params["down"]):
    flops = 2.0 * n * r * c * 9 * d * d
    out.append((f"down {i} ({r}x{c}) block", block, (p, x), flops))
    out.append((f"down {i} ({r}x{c}) conv only", conv, (p["conv"], x), flops))
    x = block(p, x)
    r, c = r // 2, c // 2
  if cfg.n_layer:
    x_NxLxD = x.reshape(n, -1, d).astype(jnp.float32)
    stack = lambda blocks, x: frame_head.attention_stack(blocks, x, cfg, ex)
    label = f"attention x{cfg.n_layer} ({x_NxLxD.shape[1]} tokens)"
    flops = n * cfg.attention_flops_per_frame()
    out.append((label, stack, (params["blocks"], x_NxLxD), flops))
  out.append(
    (
      "whole head",
      lambda p, frames: frame_head.apply(p, frames, cfg, ex),
      (params, frames),
      n * cfg.forward_flops_per_frame(),
    )
  )
  return out


def breakdown_job(job: dict):
  b, chunk, reps = job["batch"], job["chunk"], job.get("reps", 10)
  cfg, ex = common.configs(job.get("m", {}), job.get("b", {}))
  info = common.device_info()
  n = b * chunk
  params = frame_head.init(jax.random.PRNGKey(0), cfg)
  frames = jax.random.randint(jax.random.PRNGKey(1), (n,) + cfg.frame_shape, 0, 256).astype(
    jnp.uint8
  )
  whole = None
  for label, fn, args, flops in _parts(params, cfg, ex, frames):
    f_ms, fb_ms = _time(fn, args, reps)
    rec = {
      "label": label,
      "frames": n,
      "fwd_ms": round(f_ms, 3),
      "fwd_bwd_ms": round(fb_ms, 3),
      "fwd_gflop": round(flops / 1e9, 2),
    }
    if flops:
      rec.update(
        fwd_tflops=round(flops / f_ms / 1e9, 1), fwd_bwd_tflops=round(3 * flops / fb_ms / 1e9, 1)
      )
    if label == "whole head":
      whole = f_ms + fb_ms  # remat: forward twice, backward once
      rec["head_bound_frames_per_s"] = round(n / whole * 1e3, 1)
    common.emit("breakdown", **rec, **info)
  return whole
