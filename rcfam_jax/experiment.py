"""Experiments: a config loaded exactly as `python -m rcfam_jax.main --config ...` loads it, and
its frozen sections (`Experiment`, `parse_config`).

  cfg = experiment.load("experiments/demo.py:steps=20", ["--config.train.batch_size=4"])

A spec is a file, 'experiments/NAME.py[:ARG]' (relative to the working directory, as for main),
or a module, 'experiments.NAME[:ARG]'; the text after the first colon is get_config's argument.
Overrides are command-line arguments: '--config.section.field=value' (also '--config.flag' and
'--noconfig.flag' for booleans, or the value as the next argument). ml_collections.config_flags
itself parses them, so types, tuples and their errors are those of every command that takes an
experiment: rcfam_jax.main, rcfam_jax.data, rcfam_jax.research.scaling and
rcfam_jax.research.tasks.sweep.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import warnings
from collections.abc import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

from rcfam_jax import optim, train
from rcfam_jax.config import DataConfig, ExecConfig, MeshConfig, ModelConfig, check_exec, from_dict

_FLAG = "config"
_OVERRIDE = re.compile(rf"^--?(?:no)?{_FLAG}\.([^=]+)")


@dataclasses.dataclass(frozen=True)
class Experiment:
  model: ModelConfig
  exec: ExecConfig
  optim: optim.OptimConfig
  train: train.TrainConfig
  data: DataConfig
  mesh: MeshConfig = MeshConfig()


def parse_config(config: ml_collections.ConfigDict) -> Experiment:
  """ConfigDict -> frozen dataclasses, with the cross-section checks."""
  c = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  if "bptt" in c:
    raise ValueError(
      "config section 'bptt' is now 'exec', which also holds model.conv_impl, "
      "attention_impl, lstm_impl and lstm_unroll; the frame size is model.rows/"
      "cols alone: start from experiments/common.py"
    )
  missing = [k for k in ("model", "exec", "optim", "train", "data") if k not in c]
  if missing:
    raise ValueError(f"config lacks section(s) {missing}; start from experiments/common.py")
  extra = sorted(set(c) - {"model", "exec", "optim", "train", "data", "mesh", "description"})
  if extra:
    raise ValueError(f"unknown config section(s) {extra}")
  exp = Experiment(
    from_dict(ModelConfig, c["model"]),
    from_dict(ExecConfig, c["exec"]),
    from_dict(optim.OptimConfig, c["optim"]),
    from_dict(train.TrainConfig, c["train"]),
    from_dict(DataConfig, c["data"]),
    from_dict(MeshConfig, c.get("mesh")),
  )
  check_exec(exp.model, exp.exec)
  return exp


class ExperimentError(ValueError):
  """get_config failed, or an override names no field or has a value of the wrong type."""


class ExperimentNotFound(ExperimentError, FileNotFoundError):
  """No such experiment file or module."""


def resolve(spec: str) -> tuple[str, str | None]:
  """'PATH.py[:ARG]' or 'package.module[:ARG]' -> (the file, ARG or None)."""
  target, colon, arg = spec.partition(":")
  path = target
  if not target.endswith(".py") and "/" not in target and os.sep not in target:
    try:
      found = importlib.util.find_spec(target)
    except (ImportError, ValueError):
      found = None
    path = found.origin if found is not None else None
  if not path or not os.path.isfile(path):
    where = f" (from {os.getcwd()})" if target.endswith(".py") else ""
    raise ExperimentNotFound(
      f"no experiment {target!r}{where}: give experiments/NAME.py[:ARG] "
      "or a module such as experiments.NAME"
    )
  return path, (arg if colon else None)


def load(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The locked ConfigDict of `spec` with `overrides` applied, parsed by config_flags.

  Raises ExperimentNotFound (a FileNotFoundError) for a missing experiment, else
  ExperimentError (a ValueError) naming the override, field or get_config argument that is wrong.
  """
  path, arg = resolve(spec)
  overrides = list(overrides)
  again = [o for o in overrides if re.match(rf"^--?{_FLAG}(=|$)", o)]
  if again:
    raise ExperimentError(
      f"{spec}: {again[0]!r}: the experiment is the spec; overrides are --{_FLAG}.FIELD=VALUE"
    )
  argv = ["experiment", f"--{_FLAG}={path if arg is None else f'{path}:{arg}'}", *overrides]
  values = flags.FlagValues()
  holder = config_flags.DEFINE_config_file(
    _FLAG, None, "experiment config", flag_values=values, lock_config=True, sys_argv=argv
  )
  try:
    with warnings.catch_warnings():  # config_flags loads the file with SourceFileLoader.load_module
      warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
      rest = values(argv)
  except (flags.Error, KeyError, AttributeError) as e:
    raise ExperimentError(f"{spec}: {_explain(e, spec, overrides)}") from e
  if rest[1:]:
    raise ExperimentError(f"{spec}: not --{_FLAG}.FIELD=VALUE overrides: {rest[1:]}")
  return holder.value


def _explain(e: Exception, spec: str, overrides: list[str]) -> str:
  """One line for what config_flags raised: the unknown field, or the failure's last line."""
  if not isinstance(e, flags.Error):  # KeyError, AttributeError: a path, or get_config itself
    try:
      base = load(spec) if overrides else None
    except ExperimentError:
      base = None
    if base is None:
      return f"get_config failed: {type(e).__name__}: {e}"
    return _unknown_field(base, overrides) or f"overrides {overrides}: {type(e).__name__}: {e}"
  lines = [s.strip() for s in str(e).splitlines() if s.strip()]
  if "Error whilst parsing config file" in str(e):  # get_config raised: its traceback follows
    return f"get_config failed: {lines[-1]}"
  return lines[-1] if lines else type(e).__name__


def _unknown_field(config: ml_collections.ConfigDict, overrides: list[str]) -> str | None:
  for item in overrides:
    m = _OVERRIDE.match(item)
    node, seen = config, []
    for key in m.group(1).split(".") if m else ():
      if not isinstance(node, ml_collections.ConfigDict) or key not in node:
        known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        where = ".".join(seen) or "the config"
        return f"override {item!r}: {where} has no field {key!r} (fields: {known})"
      node, seen = node[key], seen + [key]
  return None
