"""One LSTM layer (rcfam_jax.lstm), forward and forward+backward, per variant: us per time step.

Job fields: batch, hidden, T, reps, dtype, variants (list of {unroll, remat, interval, impl}).
The input width equals `hidden`; the input projection is included (hoisted, as in training).
Every variant after the first reports how far its gradients are from the first's (bf16
noise between two scans bounds what to expect of the fused kernel).
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from rcfam_jax import lstm, lstm_fused
from rcfam_jax.research.bench import common

DEFAULT_VARIANTS = [{"unroll": u, "remat": "none"} for u in (1, 4, 8, 16)] + [
  {"unroll": 8, "remat": "step"},
  {"unroll": 8, "remat": "nested", "interval": 64},
]


def lstm_job(job: dict):
  b, h, t, reps = job["batch"], job["hidden"], job["T"], job["reps"]
  dtype = jnp.dtype(job.get("dtype", "bfloat16"))
  kp, kx, kc = jax.random.split(jax.random.PRNGKey(0), 3)
  params = lstm.init(kp, h, h, 1)
  x_TxBxH = jax.random.normal(kx, (t, b, h), jnp.float32)
  ct_TxBxH = jax.random.normal(kc, (t, b, h), jnp.float32)
  state = lstm.initial_state(params, b)
  info = common.device_info()
  ref = {}
  for v in job.get("variants") or DEFAULT_VARIANTS:
    impl = v.get("impl", "scan")
    kw = dict(
      dtype=dtype, unroll=v["unroll"], remat=v["remat"], interval=v.get("interval", 64), impl=impl
    )
    if impl == "fused":
      if v.get("ablate"):  # one process per ablation: the kernel is fixed at first use
        lstm_fused.profile_ablated(v["ablate"])
      ok, why = lstm_fused.available()
      if not ok:
        common.emit("lstm", label="fused kernel", skipped=why[:300], **info)
        continue

    def loss(p, x, kw=kw):
      y, _ = lstm.apply(p, x, state, **kw)
      return jnp.vdot(y, ct_TxBxH)

    fwd = jax.jit(lambda p, x, kw=kw: lstm.apply(p, x, state, **kw)[0])
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    t0 = time.perf_counter()
    jax.block_until_ready(grad(params, x_TxBxH))
    compile_s = time.perf_counter() - t0
    f_s = statistics.median(common.time_fn(lambda fwd=fwd: fwd(params, x_TxBxH), reps))
    fb_s = statistics.median(common.time_fn(lambda grad=grad: grad(params, x_TxBxH), reps))
    label = (
      "fused kernel"
      if impl == "fused"
      else f"unroll {v['unroll']}, remat {v['remat']}"
      + (f" {kw['interval']}" if v["remat"] == "nested" else "")
    )
    if v.get("ablate"):
      label += f", ablate {v['ablate']} (timing only)"
    extra = {}
    g = jax.device_get(grad(params, x_TxBxH))
    if not ref:
      ref.update(grads=g, label=label)
    else:  # the same function in bf16: how far each variant's gradients are from the first's
      pairs = list(zip(jax.tree.leaves(g), jax.tree.leaves(ref["grads"])))
      extra = {
        "vs": ref["label"],
        "max_rel_grad_diff": float(
          max(np.abs(a - b).max() / (np.abs(b).max() + 1e-30) for a, b in pairs)
        ),
        "max_norm_rel_grad_diff": float(
          max(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-30) for a, b in pairs)
        ),
      }
    common.emit(
      "lstm",
      label=label,
      impl=impl,
      batch=b,
      hidden=h,
      T=t,
      dtype=dtype.name,
      unroll=v["unroll"],
      remat=v["remat"],
      fwd_us_per_step=round(f_s / t * 1e6, 2),
      fwd_bwd_us_per_step=round(fb_s / t * 1e6, 2),
      compile_s=round(compile_s, 1),
      **extra,
      **info,
    )
