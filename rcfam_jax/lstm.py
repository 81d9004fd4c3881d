"""Residual LSTM stack: parallel input projection, then a minimal serial scan per layer.

Cell (gate order i, f, g, o):
  [i f g o] = x W_x + h W_h + b;  c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(c')
The input projection x W_x + b runs for all T at once (one matmul); only h W_h is inside the
scan. Matmul inputs may be bf16; gates, h and c are float32. Each layer is its own scan, so
that a layer's whole input projection is one matmul and its serial loop holds only h W_h.
impl='fused' runs each layer's recurrence as one persistent CUDA kernel instead (lstm_fused.py;
NVIDIA GPUs).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rcfam_jax import lstm_fused, nn
from rcfam_jax.scan import blocked_scan


class State(NamedTuple):
  """Recurrent state of the stack: h and c, each (layers, B, H) float32."""

  h: jax.Array
  c: jax.Array


def init(key, d_in: int, hidden: int, layers: int, *, forget_bias: float = 0.0, biases: int = 1):
  """U(-1/sqrt(H), 1/sqrt(H)) weights and bias; learned h0/c0 start at zero.

  biases=2 adds a second bias `b_h` (PyTorch's b_hh beside b_ih): the same function as one bias
  equal to their sum, kept for the author's parameter layout.
  """
  bound = 1.0 / math.sqrt(hidden)
  out = []
  for layer, k in enumerate(jax.random.split(key, layers)):
    kx, kh, kb = jax.random.split(k, 3)
    b = nn.uniform(kb, (4 * hidden,), bound).at[hidden : 2 * hidden].add(forget_bias)
    p = {
      "w_x": nn.uniform(kx, (d_in if layer == 0 else hidden, 4 * hidden), bound),
      "w_h": nn.uniform(kh, (hidden, 4 * hidden), bound),
      "b": b,
    }
    if biases == 2:
      p["b_h"] = nn.uniform(jax.random.fold_in(kb, 1), (4 * hidden,), bound)
    out.append(p)
  return {
    "layers": out,
    "h0": jnp.zeros((layers, hidden), jnp.float32),
    "c0": jnp.zeros((layers, hidden), jnp.float32),
  }


def initial_state(params, batch: int) -> State:
  shape = (params["h0"].shape[0], batch, params["h0"].shape[1])
  return State(
    jnp.broadcast_to(params["h0"][:, None], shape), jnp.broadcast_to(params["c0"][:, None], shape)
  )


def _input_proj(p):
  """The hoisted input projection's parameters: W_x and the bias (or the sum of both biases)."""
  return {"w": p["w_x"], "b": p["b"] + p["b_h"] if "b_h" in p else p["b"]}


def _layer(p, h0_H, c0_H, x_TxBxD, hc, reset_TxB, *, dtype, unroll, remat, interval, impl):
  if impl == "fused":  # bf16 recurrent matmul in the kernel, whatever `dtype`
    gx = nn.dense(_input_proj(p), x_TxBxD, dtype)
    y, h, c = lstm_fused.layer(gx, p["w_h"], h0_H, c0_H, *hc, reset_TxB)
    return (h, c), y
  w_h = p["w_h"]  # cast inside the step (loop-invariant): W_h's gradient then sums in float32

  def step(hc, inp):
    gx_Bx4H, reset_B = inp
    h, c = hc
    r = reset_B[:, None]
    h, c = jnp.where(r, h0_H, h), jnp.where(r, c0_H, c)
    gates = gx_Bx4H + nn.matmul(h, w_h, dtype)
    h, c = nn.lstm_cell(gates, c)
    return (h, c), h

  if remat == "step":
    step = jax.checkpoint(step, prevent_cse=False)

  def block(hc, xs):
    x_KxBxD, reset_KxB = xs
    gx = nn.dense(_input_proj(p), x_KxBxD, dtype)  # hoisted: one matmul
    return jax.lax.scan(step, hc, (gx, reset_KxB), unroll=max(1, min(unroll, len(gx))))

  # 'nested' keeps the carry every `interval` steps and recomputes each block's internals.
  t = x_TxBxD.shape[0]
  size = interval if remat == "nested" else t
  return blocked_scan(block, hc, (x_TxBxD, reset_TxB), size, checkpoint=remat == "nested")


def apply(
  params,
  x_TxBxD,
  state: State,
  reset_TxB=None,
  *,
  dtype=jnp.float32,
  unroll: int = 1,
  remat: str = "none",
  interval: int = 64,
  impl: str = "scan",
):
  """Runs the stack over time. Returns (y_TxBxH float32, new State).

  reset_TxB: where True, the layer restores its learned (h0, c0) before that step.
  remat: 'none' | 'step' | 'nested' (carries every `interval` steps; see config.ExecConfig).
  impl: 'scan' (lax.scan, any backend) | 'fused' (persistent CUDA kernel; unroll and remat do
    not apply: it keeps h (bf16) and c per step, 6 bytes x B x H).
  """
  t, b = x_TxBxD.shape[:2]
  if reset_TxB is None:
    reset_TxB = jnp.zeros((t, b), bool)
  hs, cs, y = [], [], x_TxBxD
  for layer, p in enumerate(params["layers"]):
    (h, c), out = _layer(
      p,
      params["h0"][layer],
      params["c0"][layer],
      y,
      (state.h[layer], state.c[layer]),
      reset_TxB,
      dtype=jnp.dtype(dtype),
      unroll=unroll,
      remat=remat,
      interval=interval,
      impl=impl,
    )
    y = out if layer == 0 else y + out
    hs.append(h)
    cs.append(c)
  return y, State(jnp.stack(hs), jnp.stack(cs))
