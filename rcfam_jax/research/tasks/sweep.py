"""Depth-benchmark sweep: train and evaluate every (task, model) config, write the reports.

Each run NAME is a family file with its arg (experiments.depth.SWEEP, OPTIONAL): frjt16_lstm1
is experiments/depth/frjt.py:jump=16,model=lstm,layers=1; --arg is appended to every run's arg.

  python -m rcfam_jax.research.tasks.sweep --preset=full --out=out/depth_bench/full \
      --docs=docs/DEPTH_BENCHMARK.md        # the whole H200 sweep, one run (timings in the doc)
  python -m rcfam_jax.research.tasks.sweep --preset=cpu --only=frjt_lstm1,frjt_transformer1
  python -m rcfam_jax.research.tasks.sweep --quick   # seconds; smoke test
  python -m rcfam_jax.research.tasks.sweep --preset=cpu --only=maze_lstm1 --config.run.lr=1e-3
  python -m rcfam_jax.research.tasks.sweep --preset=full --optional --protocol=fixed \
      --out=out/depth_bench/full_fixed --docs=docs/DEPTH_BENCHMARK.md   # fixed-length rows
  python -m rcfam_jax.research.tasks.sweep --preset=cpu --protocol=fixed --only=perm_lstm1 \
      --arg=length=96                       # one L for every depth (default: base.py)
  python -m rcfam_jax.research.tasks.sweep --preset=full --optional --ablation --protocol=fixed \
      --jobs=3 [--stop-after=420] [--resume]   # `make depth-bench`: three configs at a time,
                                            # one process each, costliest first; --stop-after
                                            # starts no config after 420 s; --resume keeps the
                                            # finished runs of --out's results.json
  python -m rcfam_jax.research.tasks.sweep --from-results=out/depth_bench/cpu/results.json \
      --docs=docs/DEPTH_BENCHMARK.md        # re-render tables, plot and docs only

Writes <out>/results.json (after every run, so a partial sweep keeps its results),
<out>/table.md and <out>/accuracy_vs_depth.png; with --docs, also replaces the preset's
generated section of the docs file and puts the plot beside it. --protocol=fixed (= --arg
protocol=fixed) runs the fixed-length protocol (experiments/depth/base.py): its default --out
is out/depth_bench/<preset>_fixed and its docs section `<preset>_fixed`, so it never replaces
the variable-length results.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

import jax

from rcfam_jax import experiment
from rcfam_jax.research.tasks import cliffs, report
from rcfam_jax.research.tasks.runs import build, cost, load_config, run_one, select


def _write_json(obj, path: str) -> None:
  """json to `path` through a temporary file renamed when complete."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def _in_processes(names, arg, overrides, out_dir, jobs: int, log, started):
  """Yields (name, entry or None, error or None) as `jobs` worker processes (this module's
  --worker) finish them, each process its own XLA client on the shared device (no
  preallocation); a failed run is reported, the others go on. A run for which `started()` is
  False when a worker comes free is not started (entry and error None)."""
  env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
  tmp = os.path.join(out_dir, "runs.tmp")
  os.makedirs(tmp, exist_ok=True)

  def one(name):
    if not started():
      return name, None, None
    path, err = (os.path.join(tmp, f"{name}.{ext}") for ext in ("json", "err"))
    cmd = [sys.executable, "-m", "rcfam_jax.research.tasks.sweep", f"--worker={name}"]
    cmd += [f"--worker-out={path}"]
    cmd += [f"--arg={arg or ''}", *overrides]
    with open(err, "w+") as stderr:
      proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
      for line in proc.stdout:  # as the worker prints it: a cut-short sweep shows its progress
        log(f"  {line.rstrip()}")
      if proc.wait():
        stderr.seek(0)
        return name, None, f"{name}: worker exited {proc.returncode}: {stderr.read()[-2000:]}"
    with open(path) as f:
      return name, json.load(f), None

  with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
    for done in concurrent.futures.as_completed([pool.submit(one, n) for n in names]):
      yield done.result()
  shutil.rmtree(tmp, ignore_errors=True)


def run_sweep(
  names,
  arg: str | None,
  out_dir: str,
  docs: str | None = None,
  command: str | None = None,
  log=print,
  overrides: Sequence[str] = (),
  jobs: int = 1,
  resume: bool = False,
  stop_after: float | None = None,
):
  """Runs `names` (in order, or `jobs` at a time in worker processes sharing the device,
  the costliest first); returns the results dict (also written to out_dir after every run, in
  `names` order). With `resume`, the runs already in out_dir's results.json (same configs) are
  kept, not rerun. With `stop_after`, no run starts once this call has taken that many
  seconds; runs under way finish, and --resume runs the rest."""
  configs = {name: load_config(name, arg, overrides) for name in names}  # every error up front
  for name, cfg in configs.items():
    try:
      build(cfg)
    except ValueError as e:  # e.g. a fixed length too short for an overridden eval depth
      raise experiment.ExperimentError(f"{name}: {e}") from None
  os.makedirs(out_dir, exist_ok=True)
  preset = configs[names[0]].preset
  protocol = configs[names[0]].get("protocol", "variable")
  results = {
    "meta": {
      "command": command or "run_sweep(...)",
      "preset": preset,
      "protocol": protocol,
      "section": preset if protocol == "variable" else f"{preset}_{protocol}",
      "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
      "device": _device_name(),
      "jax": jax.__version__,
      "jobs": jobs,
      "total_s": 0.0,
    },
    "runs": {},
  }
  done = _resumed(results, configs, out_dir, log) if resume else {}
  todo = [name for name in names if name not in done]
  t0 = time.perf_counter() - results["meta"]["total_s"]
  deadline = time.perf_counter() + (math.inf if stop_after is None else stop_after)
  started = lambda: time.perf_counter() < deadline
  if jobs > 1:
    todo = sorted(todo, key=lambda n: -cost(configs[n]))
    finished = _in_processes(todo, arg, overrides, out_dir, jobs, log, started)
  else:
    finished = ((n, run_one(n, configs[n], log) if started() else None, None) for n in todo)
  failed, left = [], []
  for name, entry, error in finished:
    if entry is None and error is None:
      left.append(name)
      continue
    if error:
      failed.append(error)
      log(error)
      continue
    done[name] = entry
    results["runs"] = {n: done[n] for n in names if n in done}
    results["meta"]["total_s"] = time.perf_counter() - t0
    log(f"[{len(done)}/{len(names)}] {name} done, total {results['meta']['total_s']:.0f}s")
    _write_json(results, os.path.join(out_dir, "results.json"))
  if done:
    write_reports(results, out_dir, docs)
  if left:
    log(
      f"--stop-after {stop_after:g}s: {len(left)} run(s) not started ({', '.join(left)}); "
      "the same command with --resume runs them"
    )
  if failed:
    raise experiment.ExperimentError(f"{len(failed)} run(s) failed:\n" + "\n".join(failed))
  return results


def _resumed(results: dict, configs: dict, out_dir: str, log) -> dict:
  """The runs of `configs` already in out_dir/results.json, after checking that they ran the
  same configs; `results`' meta continues the old one (total_s adds up, parts counts the
  invocations). An ExperimentError names a mismatch."""
  path = os.path.join(out_dir, "results.json")
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    old = json.load(f)
  meta = results["meta"]
  for key in ("preset", "protocol"):
    if old["meta"].get(key, "variable") != meta[key]:
      raise experiment.ExperimentError(
        f"--resume: {path} has {key}={old['meta'].get(key)!r}, this sweep {meta[key]!r}; "
        "choose another --out or drop --resume"
      )
  done = {}
  for name, entry in old["runs"].items():
    if name not in configs:
      continue
    cfg = json.loads(json.dumps({k: dict(configs[name][k]) for k in ("task", "model", "run")}))
    for k, want in cfg.items():
      have = {f: entry[k].get(f) for f in want}
      if have != want:
        raise experiment.ExperimentError(
          f"--resume: {path} ran {name} with {k} {have}, this sweep asks {want}; "
          "choose another --out or drop --resume"
        )
    done[name] = entry
  meta["total_s"] = old["meta"].get("total_s", 0.0)
  meta["parts"] = old["meta"].get("parts", 1) + 1
  meta["commands"] = [*old["meta"].get("commands", [old["meta"]["command"]]), meta["command"]]
  results["runs"] = {n: done[n] for n in configs if n in done}
  log(f"--resume: {len(done)} run(s) kept from {path}: {', '.join(done) or 'none'}")
  return done


def write_reports(results, out_dir: str, docs: str | None = None) -> None:
  with open(os.path.join(out_dir, "table.md"), "w") as f:
    f.write(report.tables(results) + "\n" + cliffs.table(results))
  png = os.path.join(out_dir, "accuracy_vs_depth.png")
  report.plot(results, png)
  if docs:
    preset = results["meta"].get("section", results["meta"]["preset"])
    plot_name = f"{os.path.splitext(os.path.basename(docs))[0]}_{preset}.png"
    os.makedirs(os.path.dirname(docs) or ".", exist_ok=True)
    shutil.copyfile(png, os.path.join(os.path.dirname(docs) or ".", plot_name))
    report.update_docs(docs, preset, report.section(results, plot_name))


def _device_name() -> str:
  d = jax.devices()[0]
  if d.platform == "cpu":
    return f"CPU ({os.cpu_count()} cores)"
  return f"{jax.device_count()}x {getattr(d, 'device_kind', d.platform)}"


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--preset", default="full", choices=("full", "cpu", "quick"))
  p.add_argument("--quick", action="store_true", help="same as --preset=quick")
  p.add_argument("--only", default="", help="comma-separated run names (default: SWEEP)")
  p.add_argument("--optional", action="store_true", help="also run OPTIONAL (S3 composition)")
  p.add_argument(
    "--ablation",
    action="store_true",
    help="also run ABLATION (position encodings; Transformer and Mamba-2 at 1, 2, 4 layers)",
  )
  p.add_argument("--arg", default="", help="extra config arg, e.g. 'steps=4000,seed=1'")
  p.add_argument(
    "--protocol",
    default="variable",
    choices=("variable", "fixed"),
    help="fixed: every row one length L, training and evaluation (experiments/depth/base.py)",
  )
  p.add_argument(
    "--out", default=None, help="output folder (default out/depth_bench/<preset>[_fixed])"
  )
  p.add_argument("--docs", default=None, help="docs file whose preset section to rewrite")
  p.add_argument(
    "--jobs",
    type=int,
    default=1,
    help="configs trained at once, each in its own process on the same device; the processes "
    "take turns on the GPU, so this saves time only where a config leaves it idle (compiling, "
    "evaluating); per-run timings are then measured side by side",
  )
  p.add_argument(
    "--resume",
    action="store_true",
    help="keep the runs already in --out's results.json (same configs) and run the rest",
  )
  p.add_argument(
    "--stop-after",
    type=float,
    default=None,
    help="seconds: start no run after this (runs under way finish); --resume runs the rest",
  )
  p.add_argument("--worker", help=argparse.SUPPRESS)  # one run, for --jobs
  p.add_argument("--worker-out", help=argparse.SUPPRESS)
  p.add_argument(
    "--from-results",
    default=None,
    help="skip training: rewrite the reports (into --out, default beside the "
    "file) and --docs from this results.json",
  )
  args, overrides = p.parse_known_args(argv)  # --config.section.field=value, as rcfam_jax.main
  log = lambda s: print(s, flush=True)
  if args.worker:
    entry = run_one(args.worker, load_config(args.worker, args.arg or None, overrides), log)
    return _write_json(entry, args.worker_out)
  if args.jobs < 1:
    p.error(f"--jobs must be >= 1, got {args.jobs}")
  if args.from_results:
    if overrides:
      p.error(f"--from-results trains nothing: unrecognized arguments {overrides}")
    with open(args.from_results) as f:
      results = json.load(f)
    out_dir = args.out or os.path.dirname(args.from_results) or "."
    os.makedirs(out_dir, exist_ok=True)
    write_reports(results, out_dir, args.docs)
    log(f"rewrote reports from {args.from_results}")
    return
  preset = "quick" if args.quick else args.preset
  extra = args.arg.split(",")
  if args.protocol == "fixed" and "protocol=variable" in extra:
    p.error("--protocol=fixed contradicts --arg=protocol=variable")
  fixed = args.protocol == "fixed" or "protocol=fixed" in extra
  try:
    names = select(args.only, args.optional, args.ablation, fixed)
  except ValueError as e:
    p.error(str(e))
  arg = ",".join(filter(None, [f"preset={preset}", "protocol=fixed" if fixed else "", args.arg]))
  out_dir = args.out or os.path.join("out", "depth_bench", preset + ("_fixed" if fixed else ""))
  command = "python -m rcfam_jax.research.tasks.sweep " + " ".join(
    shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
  )
  try:
    run_sweep(
      names,
      arg,
      out_dir,
      args.docs,
      command,
      log,
      overrides,
      args.jobs,
      args.resume,
      args.stop_after,
    )
  except experiment.ExperimentError as e:
    p.error(str(e))
  log(
    f"wrote {out_dir}/results.json, table.md, accuracy_vs_depth.png"
    + (f" and {args.docs}" if args.docs else "")
  )


if __name__ == "__main__":
  main()
