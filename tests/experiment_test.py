"""rcfam_jax.experiment: one loader, with rcfam_jax.main's config_flags semantics, for every CLI."""

import os
import sys

import pytest
from absl import flags

from rcfam_jax import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "smoke.py")
OVERRIDES = [
  "--config.train.eval_at=(3, 5)",  # tuple
  "--config.data.sources=('/src/a', 'b')",  # tuple of str
  "--config.data.val_fraction=0.25",  # float
  "--config.optim.lr=1e-3",
  "--config.train.carry_state=true",  # bool, three spellings
  "--noconfig.data.build",
  "--config.exec.layer_remat",
  "--config.data.max_lane_steps=512",  # None-able: int | None
  "--config.exec.attention_impl=cudnn",  # str (default "auto")
  "--config.train.batch_size",
  "4",
]  # the value as the next argument


def _main_config(argv, monkeypatch):
  """The ConfigDict `python -m rcfam_jax.main ARGV` would train (its own absl flags)."""
  from rcfam_jax import main

  monkeypatch.setattr(sys, "argv", argv)
  try:
    flags.FLAGS(argv)
    return main._CONFIG.value
  finally:
    flags.FLAGS.unparse_flags()
    for name in [n for n in flags.FLAGS if n.startswith("config.")]:
      delattr(flags.FLAGS, name)


@pytest.mark.filterwarnings("ignore:the load_module")  # config_flags' own loader, in main
def test_same_config_as_main(monkeypatch, tmp_path):
  spec = f"{SMOKE}:steps=5"
  want = _main_config(
    ["main", f"--config={spec}", f"--workdir={tmp_path}", *OVERRIDES], monkeypatch
  )
  got = experiment.load(spec, OVERRIDES)
  assert got.to_dict() == want.to_dict() and str(got) == str(want)  # str shows tuple vs list
  t, d = got.train, got.data
  assert (t.steps, t.eval_at, t.carry_state, t.batch_size) == (5, (3, 5), True, 4)
  assert (d.sources, d.val_fraction, d.build, d.max_lane_steps) == (
    ("/src/a", "b"),
    0.25,
    False,
    512,
  )
  assert got.exec.attention_impl == "cudnn" and got.exec.layer_remat is True
  assert type(got.optim.lr) is float and type(d.max_lane_steps) is int
  module = experiment.load("experiments.smoke:steps=5", OVERRIDES)  # a module spec: the same
  assert str(module) == str(got)
  fresh = experiment.load(SMOKE)  # no ARG: get_config(); the None-able fields stay None
  assert fresh.train.steps == 12 and fresh.data.max_lane_steps is None
  assert fresh.exec.attention_impl == "auto" and fresh.data.cache_dir is None
  with pytest.raises(AttributeError):
    fresh.train.new_field = 1  # locked, as main's


@pytest.mark.parametrize(
  "spec, overrides, match",
  [
    (SMOKE, ["--config.train.nope=1"], r"--config.train.nope=1'.*train has no field 'nope'"),
    (SMOKE, ["--config.nope.steps=1"], r"the config has no field 'nope'"),
    (SMOKE, ["--config.train.steps=ten"], r"--config.train.steps=ten: invalid literal"),
    (SMOKE, ["--config.data.max_lane_steps=big"], r"--config.data.max_lane_steps=big"),
    (SMOKE, ["--config.train.carry_state=maybe"], r"--config.train.carry_state=maybe"),
    (SMOKE, ["--workdir=/tmp/x"], r"Unknown command line flag 'workdir'"),
    (SMOKE, ["train.steps=3"], r"not --config.FIELD=VALUE overrides: \['train.steps=3'\]"),
    (SMOKE, ["--config=experiments/demo.py"], r"the experiment is the spec"),
    (f"{SMOKE}:nope=3", [], r"get_config failed: ValueError: unknown config arg 'nope'"),
    (
      "experiments.depth.maze:model=lstm,preset=huge",
      [],
      r"get_config failed: ValueError: config arg preset='huge' is not one of full\|cpu\|quick",
    ),
    (
      "experiments.depth.maze:model=lstm,preset=huge",
      ["--config.run.steps=1"],
      r"get_config failed: ValueError: config arg preset='huge'",
    ),
    (
      "experiments/depth/frjt.py:model=rnn",
      [],
      r"get_config failed: ValueError: config arg model='rnn' is not one of lstm\|transformer",
    ),
  ],
)
def test_bad_override_or_arg_is_named(spec, overrides, match):
  with pytest.raises(experiment.ExperimentError, match=match):
    experiment.load(spec, overrides)


def test_missing_experiment():
  for spec in ("experiments/nope.py:steps=1", "experiments.nope", "nope.nope"):
    with pytest.raises(
      experiment.ExperimentNotFound,
      match="no experiment 'experiments/nope.py'"
      if spec.endswith(":steps=1")
      else f"no experiment '{spec}'",
    ):
      experiment.load(spec)
  assert issubclass(experiment.ExperimentNotFound, FileNotFoundError)


def test_depth_config_module_with_overrides():
  c = experiment.load(
    "experiments.depth.frjt:model=lstm,layers=1,preset=quick",
    ["--config.run.eval_depths=(1, 2)", "--config.task.max_jump=2"],
  )
  assert (c.name, c.preset, c.run.eval_depths, c.task.max_jump) == (
    "frjt_lstm1",
    "quick",
    (1, 2),
    2,
  )
