"""One depth-benchmark run: its config (experiments/depth), its build, its cost, training it;
and the sweep's choice of runs. The sweep (sweep.py) runs these one at a time or in workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from rcfam_jax import experiment
from rcfam_jax.config import from_dict
from rcfam_jax.research import baselines, tasks
from rcfam_jax.research.tasks import fit


def build(cfg):
  """ConfigDict -> (task, ModelConfig, RunConfig): the config boundary."""
  task_kw = dict(cfg.task)
  task = tasks.make(task_kw.pop("name"), **task_kw)
  model = from_dict(
    baselines.ModelConfig, dict(cfg.model), vocab_size=task.input_size, output_size=task.output_size
  )
  run = dict(cfg.run)
  run["eval_depths"] = tuple(run["eval_depths"])
  run = from_dict(fit.RunConfig, run)
  task.seq_len(max(run.train_max_depth, *run.eval_depths))  # a fixed length too short: error now
  return task, model, run


def load_config(name: str, arg: str | None = None, overrides: Sequence[str] = ()):
  """Run `name`'s config (experiments.depth.spec), with '--config.run.steps=...' overrides."""
  from experiments import depth

  try:
    spec = depth.spec(name, arg)
  except ValueError as e:
    raise experiment.ExperimentNotFound(str(e)) from None
  cfg = experiment.load(spec, overrides)
  if cfg.name != name:
    raise experiment.ExperimentError(
      f"{spec}: this is run {cfg.name!r}, not {name!r}; choose runs with --only, not --arg"
    )
  return cfg


def run_one(name: str, cfg, log=print) -> dict:
  """Trains and evaluates one config; its results.json entry."""
  task, model, run = build(cfg)
  log(
    f"{name}: {model.kind} L={model.layers} d={model.d_model}, {run.steps} steps x {run.batch}, "
    f"depths 1..{run.train_max_depth}, eval {list(run.eval_depths)}"
  )
  out = fit.fit(task, model, run, log=log, tag=name)
  out["eval"] = {str(d): m for d, m in out["eval"].items()}
  log(
    f"{name}: params {out['params']:,}, train {out['train_s']:.1f}s, eval "
    + " ".join(
      f"d{d}:{100 * m['acc']:.0f}/{100 * m['final_acc']:.0f}" for d, m in out["eval"].items()
    )
    + f", cliff {out['cliff_depth']}"
  )
  return {
    "label": cfg.get("label", cfg.task.name),
    "task": dict(cfg.task),
    "model": dict(cfg.model),
    "run": {
      **dict(cfg.run),
      "eval_depths": list(run.eval_depths),
      "cliff_threshold": run.cliff_threshold,
    },
    **out,
  }


# Relative step cost per token and layer (the fixed protocol's H200 step times,
# docs/DEPTH_BENCHMARK.md: the maze's LSTM, Mamba-2-8 and bfloat16 Transformer-8).
KIND_COST = {"lstm": 4.0, "mamba": 1.0, "transformer": 0.4}


def cost(cfg) -> float:
  """A run's relative cost, for ordering (not a time): steps x batch x row length x layers x
  KIND_COST."""
  task, model, run = build(cfg)
  length = task.seq_len(max(run.train_max_depth, *run.eval_depths))
  return run.steps * run.batch * length * model.layers * KIND_COST[model.kind]


def select(only: str, optional: bool, ablation: bool, fixed: bool) -> list[str]:
  """The sweep's run names: `only` (comma-separated), else SWEEP (less VARIABLE_ONLY in the
  fixed protocol); then OPTIONAL and ABLATION if asked. A ValueError names unknown runs."""
  from experiments.depth import ABLATION, OPTIONAL, SWEEP, VARIABLE_ONLY

  names = [n for n in only.split(",") if n]
  if not names:
    names = [n for n, _, _ in SWEEP if not (fixed and n in VARIABLE_ONLY)]
  names += [n for n, _, _ in OPTIONAL] if optional else []
  names += [n for n, _, _ in ABLATION] if ablation else []
  known = [n for n, _, _ in SWEEP + OPTIONAL + ABLATION]
  unknown = sorted(set(names) - set(known))
  if unknown:
    raise ValueError(f"unknown run(s) {unknown}; known: {known}")
  return names
