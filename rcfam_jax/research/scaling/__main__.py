"""CLI: `python -m rcfam_jax.research.scaling run ...` and `... fit ...`."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys


def _seq_lens(text: str) -> list[int]:
  try:
    return [int(t) for t in text.split(",") if t.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(
      f"--seq-lens wants integers like 2,16,128, got {text!r}"
    ) from None


def _positive_int(text: str) -> int:
  if not text.isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f"wants a positive integer, got {text!r}")
  return int(text)


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  ap = argparse.ArgumentParser(prog="python -m rcfam_jax.research.scaling", description=__doc__)
  sub = ap.add_subparsers(dest="cmd", required=True)
  r = sub.add_parser(
    "run",
    help="train or resume one run per sequence length into ROOT/T<T>",
    epilog="Further --config.section.field=value arguments override every run, "
    "as they override rcfam_jax.main's config.",
  )
  r.add_argument("--exp", required=True, help="experiments/<exp>_<T>.py or experiments/<exp>.py")
  r.add_argument("--seq-lens", required=True, type=_seq_lens)
  r.add_argument("--root", required=True)
  r.add_argument(
    "--equal-tokens",
    action="store_true",
    help="batch_size x seq_len constant (that of the longest T's config)",
  )
  r.add_argument(
    "--tokens-per-step",
    type=_positive_int,
    default=None,
    help="the --equal-tokens control with N actions per step (e.g. the longest T's batch x T, "
    "when that run is shared with the fixed-batch half and not trained again)",
  )
  r.add_argument("--steps", type=int, default=None, help="train.steps for every run")
  r.add_argument(
    "--arg", default=None, help="config argument for get_config, e.g. minutes=20,batch=8"
  )
  r.add_argument(
    "--devices",
    default="",
    help="GPU ids (e.g. 0,1,2,3): one worker process per GPU, runs in parallel",
  )
  f = sub.add_parser("fit", help="fit the runs and write report.md, fit.json and plots")
  f.add_argument("run_dirs", nargs="+")
  f.add_argument("--out", required=True)
  f.add_argument(
    "--step-tol", type=int, default=0, help="match eval steps across runs within this many steps"
  )
  f.add_argument(
    "--max-gap-s",
    type=float,
    default=600.0,
    help="intervals between log rows longer than this (restarts) are not counted",
  )
  args, extra = ap.parse_known_args(argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger("rcfam_jax").setLevel(logging.INFO)
  if args.cmd == "run":
    import jax

    jax.config.update("jax_threefry_partitionable", True)  # as rcfam_jax.main
    if args.devices:  # the workers own the GPUs; this process only plans and prepares data
      jax.config.update("jax_platforms", "cpu")
    from rcfam_jax import experiment
    from rcfam_jax.research.scaling import sweep

    try:  # the overrides are parsed by config_flags, as rcfam_jax.main parses them
      sweep.run(
        args.exp,
        args.seq_lens,
        args.root,
        equal_tokens=args.equal_tokens,
        steps=args.steps,
        overrides=tuple(extra),
        arg=args.arg,
        tokens_per_step=args.tokens_per_step,
        devices=[d for d in args.devices.split(",") if d.strip()] or None,
      )
    except experiment.ExperimentError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    return 0
  if extra:
    ap.error(f"unrecognized arguments: {extra}")
  from rcfam_jax.research.scaling import fit, report

  runs = [fit.load_run(d, max_gap_s=args.max_gap_s) for d in args.run_dirs]
  result = fit.fit_runs(runs, tol=args.step_tol)
  cmd = "python -m rcfam_jax.research.scaling " + shlex.join(argv)
  for path in report.write(result, runs, args.out, command=cmd):
    print(path)
  return 0


if __name__ == "__main__":
  sys.exit(main())
