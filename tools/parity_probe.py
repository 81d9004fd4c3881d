"""Diagnostic: does the parity convolution compile, and how long do its compile and run take,
at batch sizes around the stall docs/BENCHMARKS.md describes (the summary, change 1).

  python tools/parity_probe.py      # on a GPU; each case in its own process, 75 s limit each

Each case prints its compile seconds and its first and second run; a case past the limit
prints `{"timeout": 75}` and the stack Python was in after 60 s (inside XLA's compiler, or in
the run). The conv cases are bare convolutions; the head cases run frame_head.apply, which
since that fix convolves at most frame_head.PARITY_MAX_IMAGES images at a time (the results
in the docs are from before it).
"""

import faulthandler
import json
import subprocess
import sys
import time

CASES = {
  "head parity 512 frames": ("head", 512),
  "head parity 1024 frames": ("head", 1024),
  "conv parity N=2048 12x40": ("conv", 2048, 12, 40, 1),
  "conv parity N=4096 12x40": ("conv", 4096, 12, 40, 1),
  "conv dilated N=1024 24x80": ("conv", 1024, 24, 80, 2),
  "head parity 768 frames": ("head", 768),
}


def case(spec):
  import jax
  import jax.numpy as jnp

  faulthandler.dump_traceback_later(60, exit=False)
  if spec[0] == "conv":
    _, n, r, c, dil = spec
    x = jnp.ones((n, r, c, 512), jnp.bfloat16)
    w = jnp.ones((3, 3, 512, 512), jnp.bfloat16) * 0.01

    def f(w, x):
      y = jax.lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        ((dil, dil), (dil, dil)),
        rhs_dilation=(dil, dil),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
      )
      return jnp.sum(y.astype(jnp.float32))

    fn, args = jax.jit(jax.grad(f, argnums=(0, 1))), (w, x)
  else:
    from rcfam_jax import frame_head
    from rcfam_jax.config import ExecConfig, ModelConfig

    cfg, ex = ModelConfig(), ExecConfig(conv_impl="parity", attention_impl="cudnn")
    params = frame_head.init(jax.random.PRNGKey(0), cfg)
    frames = jnp.zeros((spec[1],) + cfg.frame_shape, jnp.uint8)
    loss = lambda p, f: jnp.sum(frame_head.apply(p, f, cfg, ex))
    fn, args = jax.jit(jax.grad(loss)), (params, frames)
  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  t1 = time.perf_counter()
  print(json.dumps({"compiled_s": round(t1 - t0, 1)}), flush=True)
  jax.block_until_ready(compiled(*args))
  t2 = time.perf_counter()
  jax.block_until_ready(compiled(*args))
  t3 = time.perf_counter()
  print(
    json.dumps({"first_run_s": round(t2 - t1, 2), "second_run_s": round(t3 - t2, 4)}), flush=True
  )


if __name__ == "__main__":
  if len(sys.argv) > 1:
    case(json.loads(sys.argv[1]))
    sys.exit(0)
  for name, spec in CASES.items():
    t0 = time.time()
    try:
      p = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)], capture_output=True, text=True, timeout=75
      )
      out, err = p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
      text = lambda b: b.decode() if isinstance(b, bytes) else (b or "")
      out, err = text(e.stdout) + '\n{"timeout": 75}', text(e.stderr)
    print(f"== {name} ({time.time() - t0:.0f} s)\n{out.strip()}", flush=True)
    tb = [ln for ln in err.splitlines() if "File" in ln or "Thread" in ln or "Error" in ln]
    if tb:
      print("\n".join(tb[-14:]), flush=True)
