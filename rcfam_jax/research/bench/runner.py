"""The bench's child processes: each measurement runs in a fresh process (its own allocator
peak), prints JSON lines that the driver echoes and collects, and is killed past its timeout."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

AUTOTUNE_FLAG = "--xla_gpu_per_fusion_autotune_cache_dir"


class Runner:
  """Runs child processes, echoes and collects their JSON lines, enforces timeouts."""

  def __init__(self, env: dict, timeout: float):
    self.env, self.timeout, self.records = env, timeout, []

  def run(
    self,
    cmd: list[str],
    *,
    label: str,
    env: dict | None = None,
    timeout: float | None = None,
    tag: dict | None = None,
  ) -> list[dict]:
    t0 = time.time()
    print(f"[bench] {label}: {' '.join(cmd)[:300]}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**self.env, **(env or {})})
    limit = timeout or self.timeout
    timer = threading.Timer(limit, proc.kill)
    timer.start()
    out = []
    try:
      for line in proc.stdout:
        line = line.strip()
        if not line.startswith("{"):
          if line:
            print(f"[{label}] {line}", file=sys.stderr, flush=True)
          continue
        try:
          rec = json.loads(line)
        except json.JSONDecodeError:
          print(f"[{label}] {line}", file=sys.stderr, flush=True)
          continue
        rec = {**(tag or {}), **rec}
        print(json.dumps(rec), flush=True)
        out.append(rec)
      rc = proc.wait()
    finally:
      timer.cancel()
    wall = time.time() - t0
    if rc != 0:
      why = f"timed out after {limit:.0f} s" if wall >= limit - 1 else f"exit status {rc}"
      rec = {"kind": "error", "part": label, "error": why, "wall_s": round(wall, 1)}
      print(json.dumps(rec), flush=True)
      out.append(rec)
    print(f"[bench] {label}: {wall:.1f} s", file=sys.stderr, flush=True)
    self.records.extend(out)
    return out

  def job(self, kind: str, job: dict, *, label: str, **kw) -> list[dict]:
    cmd = [
      sys.executable,
      "-m",
      "rcfam_jax.research.bench",
      "--worker",
      kind,
      "--job",
      json.dumps(job),
    ]
    return self.run(cmd, label=label, **kw)


def child_env(args) -> dict:
  """The children's environment: --xla-flags appended, and one shared XLA autotuning cache
  unless --no-autotune-cache (or this XLA does not accept the flag)."""
  env = dict(os.environ)
  if args.xla_flags:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  if not args.no_autotune_cache:
    cache = tempfile.mkdtemp(prefix="rcfam_autotune_")
    flags = (env.get("XLA_FLAGS", "") + f" {AUTOTUNE_FLAG}={cache}").strip()
    probe = [sys.executable, "-c", "import jax; jax.numpy.ones(2).block_until_ready()"]
    ok = subprocess.run(probe, env={**env, "XLA_FLAGS": flags}, capture_output=True).returncode
    if ok == 0:  # shared autotuning results: later compiles of the same fusions skip it
      env["XLA_FLAGS"] = flags
    else:
      print(
        f"[bench] {AUTOTUNE_FLAG} not accepted by this XLA; compiling without it",
        file=sys.stderr,
        flush=True,
      )
  return env
