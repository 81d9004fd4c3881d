"""Shared pieces of the training experiments: the base ConfigDict and big_vision-style args.

Every experiment file defines `get_config(arg=None) -> ConfigDict` with six sections that
`rcfam_jax.experiment.parse_config` turns into frozen dataclasses: model, exec, optim, train,
data, mesh.
Their defaults are the dataclass defaults, so a config lists only what it changes.
"""

from __future__ import annotations

import dataclasses
import typing

import ml_collections
from ml_collections import config_dict

from rcfam_jax import optim, train
from rcfam_jax.config import DataConfig, ExecConfig, MeshConfig, ModelConfig


def _section(cls, **overrides):
  values = dataclasses.asdict(cls())
  unknown = sorted(set(overrides) - set(values))
  if unknown:
    raise ValueError(f"unknown {cls.__name__} field(s) {unknown}")
  values.update(overrides)  # tuples stay tuples: ml_collections overrides them from flags
  hints = typing.get_type_hints(cls)
  return ml_collections.ConfigDict(
    {k: _typed_none(hints[k]) if v is None else v for k, v in values.items()}
  )


def _typed_none(hint):
  """None as a typed placeholder (`int | None` -> int), so `--config.x.y=3` can set it."""
  types = [typing.get_origin(t) or t for t in typing.get_args(hint) if t is not type(None)]
  return config_dict.placeholder(types[0]) if len(types) == 1 else None


def base_config(
  *, model=None, exec_=None, optim_=None, train_=None, data_=None, mesh=None, description: str = ""
) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.description = description
  c.model = _section(ModelConfig, **(model or {}))
  c.exec = _section(ExecConfig, **(exec_ or {}))
  c.optim = _section(optim.OptimConfig, **(optim_ or {}))
  c.train = _section(train.TrainConfig, **(train_ or {}))
  c.data = _section(DataConfig, **(data_ or {}))
  c.mesh = _section(MeshConfig, **(mesh or {}))  # devices: docs/SCALING_OUT.md
  return c


def parse_arg(arg: str | None, **defaults):
  """'a=1,b=x' -> dict over `defaults`, with values cast to each default's type."""
  out = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    if "=" not in item:
      raise ValueError(f"config arg {item!r} is not key=value")
    k, v = item.split("=", 1)
    if k not in defaults:
      raise ValueError(f"unknown config arg {k!r}; known: {sorted(defaults)}")
    d = defaults[k]
    out[k] = (
      v.lower() in ("1", "true", "yes") if isinstance(d, bool) else v if d is None else type(d)(v)
    )
  return out
