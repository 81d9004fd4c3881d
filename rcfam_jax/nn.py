"""Pure primitives over parameter dicts: initialisers, dense, RMSNorm, conv, attention.

Parameters are stored in float32; `dtype` arguments are the compute dtype of matmul inputs.
Matmuls accumulate in float32 (`preferred_element_type`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp


def uniform(key, shape, bound):
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def dense_init(key, d_in, d_out, *, bias=True, fan_in=None):
  """Kaiming-uniform with bound sqrt(1/fan_in) for weight and bias (the author's init)."""
  bound = 1.0 / math.sqrt(fan_in or d_in)
  kw, kb = jax.random.split(key)
  p = {"w": uniform(kw, (d_in, d_out), bound)}
  if bias:
    p["b"] = uniform(kb, (d_out,), bound)
  return p


def matmul(x_xI, w_IxO, dtype, out_dtype=jnp.float32):
  """x @ w with both operands in `dtype`, accumulated in float32, returned in `out_dtype`.

  For a low-precision `dtype` the backward GEMMs take `dtype` operands too: the cotangent is
  rounded to `dtype` first, as mixed-precision autocast does. JAX's own transpose of a
  bf16 x bf16 -> f32 dot upcasts the saved bf16 operand instead and runs the backward GEMMs in
  float32 (slower: docs/BENCHMARKS.md section 4). out_dtype=dtype
  (activations that only feed the next matmul) halves the GEMM's output traffic.
  """
  x_xI, w_IxO = x_xI.astype(dtype), w_IxO.astype(dtype)
  if jnp.dtype(dtype) == jnp.float32:
    return jnp.matmul(x_xI, w_IxO, preferred_element_type=jnp.float32).astype(out_dtype)
  return _lowp_matmul(x_xI, w_IxO, jnp.dtype(out_dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _lowp_matmul(x_xI, w_IxO, out_dtype):  # GEMMs accumulate in f32 whatever they return
  return jnp.matmul(x_xI, w_IxO, preferred_element_type=out_dtype)


def _lowp_matmul_fwd(x_xI, w_IxO, out_dtype):
  return _lowp_matmul(x_xI, w_IxO, out_dtype), (x_xI, w_IxO)


def _lowp_matmul_bwd(out_dtype, res, g_xO):
  del out_dtype
  x_xI, w_IxO = res
  g_xO = g_xO.astype(x_xI.dtype)
  dx = jnp.matmul(g_xO, w_IxO.T, preferred_element_type=x_xI.dtype)
  lead = tuple(range(x_xI.ndim - 1))
  dw = jnp.tensordot(x_xI, g_xO, axes=(lead, lead), preferred_element_type=w_IxO.dtype)
  return dx, dw


_lowp_matmul.defvjp(_lowp_matmul_fwd, _lowp_matmul_bwd)


def dense(p, x, dtype, out_dtype=jnp.float32):
  y = matmul(x, p["w"], dtype, out_dtype)
  if "b" in p:
    y = y + p["b"].astype(y.dtype)
  return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def rms_norm(scale, x, eps):
  """RMSNorm computed in float32; returns x's dtype.

  Backward: recomputed in float32 from x as saved (its dtype), so that the residual is x alone,
  not autodiff's float32 copies and statistics (a bf16 activation keeps a bf16 residual).
  """
  y = x.astype(jnp.float32)
  return (y * _rms_inv(y, eps) * scale).astype(x.dtype)


def _rms_inv(y, eps):
  return jax.lax.rsqrt(jnp.mean(y * y, axis=-1, keepdims=True) + eps)


def _rms_norm_fwd(scale, x, eps):
  return rms_norm(scale, x, eps), (scale, x)


def _rms_norm_bwd(eps, res, g):
  scale, x = res
  y = x.astype(jnp.float32)
  r = _rms_inv(y, eps)
  xhat, g = y * r, g.astype(jnp.float32)
  lead = tuple(range(x.ndim - 1))
  d_scale = jnp.sum(g * xhat, axis=lead).reshape(scale.shape)
  gx = g * scale
  dx = r * (gx - xhat * jnp.mean(gx * xhat, axis=-1, keepdims=True))
  return d_scale.astype(scale.dtype), dx.astype(x.dtype)


rms_norm.defvjp(_rms_norm_fwd, _rms_norm_bwd)


def conv3x3_dilated(w_3x3xDxE, x_NxRxCxD, dtype, dilation=2, impl="xla"):
  """3x3 convolution, 'same' output size (padding = dilation), no bias; NHWC; output in dtype.

  The output stays in the compute dtype (the convolution accumulates in float32 internally):
  these full-resolution activations dominate the frame head's memory traffic.
  impl: 'xla' (lax.conv_general_dilated: cuDNN on GPU), 'matmul' (the sum of 9 shifted
  matmuls; on XLA:CPU the conv's weight gradient inside a scan is ~50x slower than this) or
  'im2col' (the 9 shifted taps concatenated on channels, one matmul with K = 9D: 9x the input's
  activation memory, one large GEMM).
  """
  if impl == "matmul":
    return _conv3x3_matmul(w_3x3xDxE, x_NxRxCxD, dtype, dilation)
  if impl == "im2col":
    return _conv3x3_im2col(w_3x3xDxE, x_NxRxCxD, dtype, dilation)
  return jax.lax.conv_general_dilated(
    x_NxRxCxD.astype(dtype),
    w_3x3xDxE.astype(dtype),
    window_strides=(1, 1),
    padding=((dilation, dilation), (dilation, dilation)),
    rhs_dilation=(dilation, dilation),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )


def _taps(x_NxRxCxD, dtype, dilation):
  """The 9 dilated 3x3 taps of x ('same' padding), row-major over (ky, kx)."""
  _, h, w, _ = x_NxRxCxD.shape
  pad = ((0, 0), (dilation, dilation), (dilation, dilation), (0, 0))
  x = jnp.pad(x_NxRxCxD.astype(dtype), pad)
  return [
    x[:, ky * dilation : ky * dilation + h, kx * dilation : kx * dilation + w]
    for ky in range(3)
    for kx in range(3)
  ]


def _conv3x3_matmul(w_3x3xDxE, x_NxRxCxD, dtype, dilation):
  out = None
  for tap, w_DxE in zip(
    _taps(x_NxRxCxD, dtype, dilation), w_3x3xDxE.reshape((9,) + w_3x3xDxE.shape[2:])
  ):
    y = jnp.matmul(tap, w_DxE.astype(dtype), preferred_element_type=jnp.float32)
    out = y if out is None else out + y
  return out.astype(dtype)


def _conv3x3_im2col(w_3x3xDxE, x_NxRxCxD, dtype, dilation):
  patches = jnp.concatenate(_taps(x_NxRxCxD, dtype, dilation), axis=-1)  # (N, R, C, 9D)
  w_9DxE = w_3x3xDxE.reshape((-1, w_3x3xDxE.shape[-1])).astype(dtype)  # rows (ky, kx, d)
  return jnp.matmul(patches, w_9DxE, preferred_element_type=jnp.float32).astype(dtype)


def avg_pool2x2(x_NxRxCxD):
  n, r, c, d = x_NxRxCxD.shape
  x = x_NxRxCxD.reshape(n, r // 2, 2, c // 2, 2, d)
  return x.mean(axis=(2, 4), dtype=jnp.float32).astype(x_NxRxCxD.dtype)


@jax.custom_vjp
def gelu(x):
  """Exact GELU computed in float32, returned in x's dtype (as PyTorch's bf16 GELU does).

  Backward: the derivative recomputed in float32 from x as saved (its dtype): a bf16
  activation keeps a bf16 residual, not autodiff's float32 copies.
  """
  return jax.nn.gelu(x.astype(jnp.float32), approximate=False).astype(x.dtype)


def _gelu_fwd(x):
  return gelu(x), x


def _gelu_bwd(x, g):
  y = x.astype(jnp.float32)
  cdf = 0.5 * (1.0 + jax.lax.erf(y * (1.0 / math.sqrt(2.0))))
  pdf = jnp.exp(-0.5 * y * y) * (1.0 / math.sqrt(2.0 * math.pi))
  return ((g.astype(jnp.float32) * (cdf + y * pdf)).astype(x.dtype),)


gelu.defvjp(_gelu_fwd, _gelu_bwd)


def attention(q_NxLxAxP, k_NxLxAxP, v_NxLxAxP, implementation="auto"):
  """Full bidirectional attention (no mask). 'auto': cuDNN flash attention on a GPU where it
  applies (bf16/fp16, head size a multiple of 8 up to 128), else JAX's choice (XLA's); 'cudnn'
  asks for it, and elsewhere falls back to JAX's choice (the same function: configs run
  anywhere)."""
  if implementation == "auto":
    p = q_NxLxAxP.shape[-1]
    fits = q_NxLxAxP.dtype in (jnp.bfloat16, jnp.float16) and p % 8 == 0 and p <= 128
    implementation = "cudnn" if fits else None
  if implementation == "cudnn" and jax.default_backend() != "gpu":
    implementation = None
  return jax.nn.dot_product_attention(
    q_NxLxAxP, k_NxLxAxP, v_NxLxAxP, implementation=implementation
  )


def lstm_cell(gates_Bx4H, c_BxH):
  """The LSTM cell from pre-activation gates [i f g o] -> (h, c), in the gates' dtype."""
  i, f, g, o = jnp.split(gates_Bx4H, 4, axis=-1)
  c_BxH = jax.nn.sigmoid(f) * c_BxH + jax.nn.sigmoid(i) * jnp.tanh(g)
  return jax.nn.sigmoid(o) * jnp.tanh(c_BxH), c_BxH
