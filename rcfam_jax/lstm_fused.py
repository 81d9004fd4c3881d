"""Fused persistent LSTM layer on NVIDIA GPUs: a CUDA kernel through `jax.ffi`, exact VJP.

`layer` computes what one layer of rcfam_jax/lstm.py computes (same cell, resets, bf16
recurrent matmul with f32 accumulation, f32 cell) but runs the whole serial recurrence as one
cooperative kernel per direction (kernels/lstm_persistent.cu): W_h stays in shared memory,
the blocks meet at a grid barrier once per step, and nothing returns to the host inside the
loop. Everything parallel over time stays in XLA: the input projection before, and in the
backward pass the gate pre-activations (one GEMM) and the weight gradient (one GEMM).

The kernel is compiled with `nvcc` on first use for the local GPU and cached in
$RCFAM_KERNEL_CACHE (default ~/.cache/rcfam_jax). `lstm.apply(..., impl='scan')` is the
portable path (CPU, TPU, any GPU); tests compare the two on a GPU. `forward_reference` and
`backward_reference` are the two kernels as lax.scans (same algorithm and bf16 roundings): the
GPU tests check each kernel against its reference, and CI runs the custom VJP with them.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess

import jax
import jax.numpy as jnp

from rcfam_jax import nn

SOURCE = pathlib.Path(__file__).with_name("kernels") / "lstm_persistent.cu"
_FWD, _BWD = "rcfam_lstm_fwd", "rcfam_lstm_bwd"
_FLAGS = 256  # the kernels' grid-barrier flags (kMaxBlocks): one per block of 16 units
MAX_HIDDEN = 1024  # the backward kernel's shared memory: 16 rows of W_h + half a step's dg


_ablate = 0  # set by profile_ablated only


class Unavailable(RuntimeError):
  """The fused kernel cannot run here (no CUDA GPU, no nvcc, or the build failed)."""


def _nvcc() -> str:
  for cand in (
    os.environ.get("NVCC"),
    shutil.which("nvcc"),
    os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc"),
  ):
    if cand and os.access(cand, os.X_OK):
      return cand
  raise Unavailable(
    "nvcc not found: install the CUDA toolkit (or set NVCC=/path/to/nvcc), or use lstm_impl='scan'"
  )


def _source() -> pathlib.Path:
  """The kernel source; RCFAM_LSTM_SOURCE points at another one (kernel development)."""
  return pathlib.Path(os.environ.get("RCFAM_LSTM_SOURCE") or SOURCE)


def build(arch: str, ablate: int = 0) -> pathlib.Path:
  """Compiles the kernel for `arch` (e.g. '90') unless cached; returns the shared library.

  ablate: RCFAM_ABLATE bits (kernels/lstm_persistent.cu), for profiling by subtraction only.
  """
  src = _source().read_bytes()
  inc = jax.ffi.include_dir()
  key = hashlib.sha256(src + f"{arch}/{ablate}".encode() + inc.encode()).hexdigest()[:16]
  cache = pathlib.Path(
    os.environ.get("RCFAM_KERNEL_CACHE", pathlib.Path.home() / ".cache" / "rcfam_jax")
  )
  lib = cache / f"liblstm_persistent_sm{arch}{f'_ablate{ablate}' if ablate else ''}_{key}.so"
  if lib.exists():
    return lib
  cache.mkdir(parents=True, exist_ok=True)
  tmp = lib.with_name(f"{lib.name}.tmp{os.getpid()}")
  cmd = [
    _nvcc(),
    "-O3",
    "-std=c++17",
    f"-gencode=arch=compute_{arch},code=sm_{arch}",
    f"-DRCFAM_ABLATE={ablate}",
    "--shared",
    "-Xcompiler",
    "-fPIC",
    "-I",
    inc,
    str(_source()),
    "-o",
    str(tmp),
  ]
  r = subprocess.run(cmd, capture_output=True, text=True)
  if r.returncode:
    tmp.unlink(missing_ok=True)
    raise Unavailable(
      f"building the fused LSTM kernel failed ({' '.join(cmd)}):\n{r.stderr[-2000:]}"
    )
  os.replace(tmp, lib)  # atomic: a concurrent process sees the whole library or none
  return lib


def profile_ablated(bits: int) -> None:
  """Profiling by subtraction only (wrong results): this process's fused LSTM becomes the
  kernel built with the RCFAM_ABLATE `bits` of kernels/lstm_persistent.cu (1 grid barrier,
  2 staging, 4 products) left out. Call it before the first fused use."""
  global _ablate
  if _register.cache_info().currsize:
    raise RuntimeError("profile_ablated: the fused kernel is already loaded in this process")
  _ablate = int(bits)


@functools.cache
def _register() -> None:
  gpu = next((d for d in jax.devices() if d.platform == "gpu"), None)
  cc = str(getattr(gpu, "compute_capability", ""))
  if not cc.replace(".", "").isdigit():
    raise Unavailable(
      f"lstm_impl='fused' needs an NVIDIA GPU; this process has "
      f"{jax.devices()[0].device_kind}: use lstm_impl='scan'"
    )
  lib = ctypes.cdll.LoadLibrary(str(build(cc.replace(".", ""), _ablate)))
  jax.ffi.register_ffi_target(_FWD, jax.ffi.pycapsule(lib.RcfamLstmFwd), platform="CUDA")
  jax.ffi.register_ffi_target(_BWD, jax.ffi.pycapsule(lib.RcfamLstmBwd), platform="CUDA")


def available() -> tuple[bool, str]:
  """(True, '') if the fused kernel can run in this process, else (False, why)."""
  try:
    _register()
    return True, ""
  except Unavailable as e:
    return False, str(e)


def _out(*shapes_dtypes):
  """Result shapes of an ffi_call, then the grid-barrier flags every kernel takes."""
  return tuple(jax.ShapeDtypeStruct(s, d) for s, d in shapes_dtypes) + (
    jax.ShapeDtypeStruct((_FLAGS,), jnp.uint32),
  )


def _forward(gx, w, h0, c0, h, c, reset):
  t, b, g = gx.shape
  out = _out(
    ((t, b, g // 4), jnp.float32), ((t, b, g // 4), jnp.float32), ((t, b, g // 4), jnp.bfloat16)
  )
  return jax.ffi.ffi_call(_FWD, out)(gx, w, h, c, h0, c0, reset)[:3]


def _backward(pre, c_seq, cp, dy, dh_fin, dc_fin, reset, wb):
  t, b, g = pre.shape
  out = _out(
    ((t, b, g), jnp.float32),
    ((t, b, g), jnp.bfloat16),
    ((t, b, g // 4), jnp.float32),
    ((t, b, g // 4), jnp.float32),
  )
  return jax.ffi.ffi_call(_BWD, out)(pre, c_seq, cp, dy, dh_fin, dc_fin, reset, wb)[:4]


def forward_reference(gx, w, h0, c0, h, c, reset):
  """What the forward kernel computes, as a lax.scan (the same bf16 rounding of h_{t-1}):
  (y_t, c_t, hp_t = the bf16 matmul input of step t) for every t. For tests."""

  def step(hc, inp):
    gx_t, r = inp
    r = r[:, None].astype(bool)
    hp = jnp.where(r, h0, hc[0]).astype(jnp.bfloat16)
    gates = gx_t + jnp.matmul(hp, w, preferred_element_type=jnp.float32)
    h, c = nn.lstm_cell(gates, jnp.where(r, c0, hc[1]))
    return (h, c), (h, c, hp)

  return jax.lax.scan(step, (h, c), (gx, reset))[1]


def backward_reference(pre, c_seq, cp, dy, dh_fin, dc_fin, reset, wb):
  """What the backward kernel computes, as a reverse lax.scan: the gate cotangents (f32 and
  the bf16 copy the recurrent product takes) and the cotangents of hp_t and cp_t. For tests."""

  def step(carry, inp):
    pre_t, c_t, cp_t, dy_t, r_t = inp
    i, f, g, o = jnp.split(pre_t, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    tc = jnp.tanh(c_t)
    dh = carry[0] + dy_t
    dc = carry[1] + dh * o * (1 - tc * tc)
    dg = jnp.concatenate(
      [dc * g * i * (1 - i), dc * cp_t * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)],
      axis=-1,
    )
    dgb = dg.astype(jnp.bfloat16)
    dhp = jnp.matmul(dgb, wb.T, preferred_element_type=jnp.float32)
    r = r_t[:, None].astype(bool)  # step t restored (h0, c0): nothing flows on to t-1
    return (jnp.where(r, 0.0, dhp), jnp.where(r, 0.0, dc * f)), (dg, dgb, dhp, dc * f)

  return jax.lax.scan(step, (dh_fin, dc_fin), (pre, c_seq, cp, dy, reset), reverse=True)[1]


def _core_fwd(gx, w, h0, c0, h, c, reset):
  wb = w.astype(jnp.bfloat16)
  y, c_seq, hp = _forward(gx, wb, h0, c0, h, c, reset.astype(jnp.uint8))
  return (y, y[-1], c_seq[-1]), (gx, wb, hp, c_seq, c0, c, reset, w)


@jax.custom_vjp
def _core(gx_TxBx4H, w_Hx4H, h0_H, c0_H, h_BxH, c_BxH, reset_TxB):
  """(y_TxBxH, h_BxH, c_BxH) of the padded batch; the VJP is _core_bwd."""
  return _core_fwd(gx_TxBx4H, w_Hx4H, h0_H, c0_H, h_BxH, c_BxH, reset_TxB)[0]


def _core_bwd(res, cts):
  gx, wb, hp, c_seq, c0, c_init, reset, w = res
  dy, dh_fin, dc_fin = cts
  r = reset[..., None]
  pre = gx + jnp.matmul(hp, wb, preferred_element_type=jnp.float32)  # all steps, one GEMM
  cp = jnp.where(r, c0, jnp.concatenate([c_init[None], c_seq[:-1]]))
  dg, dgb, dhp, dcp = _backward(pre, c_seq, cp, dy, dh_fin, dc_fin, reset.astype(jnp.uint8), wb)
  dw = jnp.einsum("tbh,tbg->hg", hp, dgb, preferred_element_type=jnp.float32)
  # hp_t / cp_t is the learned (h0, c0) where reset, else the state carried from t-1.
  dh0, dc0 = (jnp.sum(jnp.where(r, d, 0.0), (0, 1)) for d in (dhp, dcp))
  dh, dc = (jnp.where(r[0], 0.0, d[0]) for d in (dhp, dcp))
  return dg.astype(gx.dtype), dw.astype(w.dtype), dh0, dc0, dh, dc, None


_core.defvjp(_core_fwd, _core_bwd)


def layer(gx_TxBx4H, w_h_Hx4H, h0_H, c0_H, h_BxH, c_BxH, reset_TxB):
  """One LSTM layer over T steps. Returns (y_TxBxH, h_BxH, c_BxH), all float32.

  gx_TxBx4H: the input projection x W_x + b (float32); w_h_Hx4H: the recurrent weight (cast to
  bf16 for the matmul); h0_H/c0_H: the learned state restored where reset_TxB is True;
  h_BxH/c_BxH: the carried state. H must be a multiple of 16 and at most MAX_HIDDEN; B is
  padded to a multiple of 16.
  """
  _register()
  t, b, g = gx_TxBx4H.shape
  if g % 64 or g != 4 * w_h_Hx4H.shape[0] or g > 4 * MAX_HIDDEN:
    raise ValueError(
      f"fused LSTM: gx is {gx_TxBx4H.shape}, W_h {w_h_Hx4H.shape}; need "
      f"4H = {4 * w_h_Hx4H.shape[0]} gate columns, H % 16 == 0 and "
      f"H <= {MAX_HIDDEN} (W_h's slices live in shared memory); else "
      f"lstm_impl='scan'"
    )
  pad = -b % 16
  padb = lambda x, axis: jnp.pad(x, [(0, pad if i == axis else 0) for i in range(x.ndim)])
  y, h, c = _core(
    padb(gx_TxBx4H.astype(jnp.float32), 1),
    w_h_Hx4H,
    h0_H.astype(jnp.float32),
    c0_H.astype(jnp.float32),
    padb(h_BxH.astype(jnp.float32), 0),
    padb(c_BxH.astype(jnp.float32), 0),
    padb(reset_TxB, 1),
  )
  return y[:, :b], h[:b], c[:b]
