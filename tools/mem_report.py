"""Diagnostic: where the training step's device memory goes, from XLA's buffer assignment.

  python tools/mem_report.py [--batch 16] [--seq-len 512] [--top 40] [--out DIR] [field=value ...]

Compiles the step `make bench` times (rcfam_jax.research.bench.common.make_step, packed cells,
AdamW) from abstract shapes, nothing allocated, with XLA's dump on, and prints its memory
analysis and the top of XLA's memory-usage report: the largest buffers of the temporary
allocation, each with the shapes of the values that share it. Run it on the machine whose
peak you want (a CPU's buffer assignment differs from a GPU's). --out keeps the report and the
buffer assignment (default: a temporary folder, removed).
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--seq-len", type=int, default=512)
  p.add_argument("--top", type=int, default=40, help="report lines to print")
  p.add_argument("--out", help="folder to keep the report and the buffer assignment in")
  p.add_argument("overrides", nargs="*", help="ModelConfig / ExecConfig field=value")
  args = p.parse_args(argv)
  dump = tempfile.mkdtemp(prefix="rcfam_mem_report_")
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_dump_to={dump} --xla_dump_hlo_module_re=.*train_step.*"
  )
  import jax  # after XLA_FLAGS

  from rcfam_jax import model, train
  from rcfam_jax.research.bench import common

  cfg, ex = common.configs(*common.parse_overrides(args.overrides))
  b, t, tx = args.batch, args.seq_len, common.adamw()
  state = jax.eval_shape(lambda k: train.init_train_state(k, cfg, tx), jax.random.PRNGKey(0))
  rnn = jax.eval_shape(lambda p: model.initial_state(p, b), state.params)
  t0 = time.perf_counter()
  spec = common.batch_spec(cfg, b, t, host=False, packed=True)  # packed cells, as the bench
  compiled = common.make_step(cfg, ex, tx).lower(state, spec, rnn).compile()
  mem = {k: round(v / 2**30, 3) for k, v in common.memory_fields(compiled).items()}
  took = time.perf_counter() - t0
  print(f"B={b} T={t} {' '.join(args.overrides)}: compile {took:.1f} s, GiB {mem}")
  reports = sorted(pathlib.Path(dump).glob("*train_step*memory-usage-report.txt"))
  if not reports:
    sys.exit(f"XLA wrote no memory-usage report to {dump}")
  lines = reports[-1].read_text().splitlines()
  print("\n".join(lines[: args.top + 4]))
  if args.out:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in pathlib.Path(dump).glob("*train_step*"):
      if f.name.endswith(("memory-usage-report.txt", "buffer-assignment.txt", "optimizations.txt")):
        shutil.copy(f, out / f.name)
  shutil.rmtree(dump, ignore_errors=True)


if __name__ == "__main__":
  main()
