"""A training workdir read back: its config and the newest parameters, without a train state.

  params, cfg, run = workdir.load("workdirs/demo")   # newest readable checkpoint's params
  exp = workdir.read_config("workdirs/demo")         # the run's Experiment (config.json)

A workdir is what `rcfam_jax.main` writes (config.json, checkpoints/) or what
`python -m rcfam_jax.interop import` writes from the author's weights (params at step 0).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple

import jax
import ml_collections
from etils import epath

from rcfam_jax import checkpoint, experiment, model
from rcfam_jax.config import ModelConfig

__all__ = ["RunInfo", "Loaded", "read_config", "load"]


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """What a run's workdir says besides the parameters."""

  workdir: str
  step: int
  exp: experiment.Experiment  # model, exec, optim, train and data configs of the run

  @property
  def n_actions(self) -> int:
    return self.exp.model.vocab_size


class Loaded(NamedTuple):
  params: Any
  cfg: ModelConfig
  run: RunInfo


def read_config(workdir: str) -> experiment.Experiment:
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise FileNotFoundError(
      f"no {path}: {workdir!r} is not a training workdir (written by `make train` / rcfam_jax.main)"
    )
  return experiment.parse_config(ml_collections.ConfigDict(json.loads(path.read_text())))


def load(workdir: str) -> Loaded:
  """(params, ModelConfig, RunInfo) of the newest readable checkpoint in a training workdir.

  Reads the parameters alone: no optimizer or train state is built or restored.
  """
  exp = read_config(workdir)
  ckpt_dir = epath.Path(workdir) / "checkpoints"
  if not ckpt_dir.exists() or not any(p.name.isdigit() for p in ckpt_dir.iterdir()):
    raise FileNotFoundError(f"no checkpoints under {ckpt_dir}: train first (make train)")
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), exp.model))
  with checkpoint.Checkpointer(str(ckpt_dir), keep=exp.train.keep_checkpoints) as ckpt:
    restored = ckpt.restore_latest({"params": params}, data=False)
  if restored is None:
    raise FileNotFoundError(f"no readable checkpoint under {ckpt_dir}")
  step, items, _ = restored
  return Loaded(items["params"], exp.model, RunInfo(workdir, int(step), exp))
