"""Shared pieces of the training experiments: the base ConfigDict and big_vision-style args.

Every experiment file defines `get_config(arg=None) -> ConfigDict` with six sections that
`rcfam_jax.loop.parse_config` turns into frozen dataclasses: model, bptt, optim, train, data, mesh.
Their defaults are the dataclass defaults, so a config lists only what it changes.
"""
from __future__ import annotations

import dataclasses

import ml_collections

from rcfam_jax import optim, train
from rcfam_jax.config import BPTTConfig, DataConfig, MeshConfig, ModelConfig


def _section(cls, **overrides):
  values = dataclasses.asdict(cls())
  unknown = sorted(set(overrides) - set(values))
  if unknown:
    raise ValueError(f"unknown {cls.__name__} field(s) {unknown}")
  values.update(overrides)  # tuples stay tuples: ml_collections overrides them from flags
  return ml_collections.ConfigDict(values)


def base_config(*, model=None, bptt=None, optim_=None, train_=None, data_=None, mesh=None,
                description: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.description = description
  c.model = _section(ModelConfig, **(model or {}))
  c.bptt = _section(BPTTConfig, **(bptt or {}))
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
    out[k] = (v.lower() in ("1", "true", "yes") if isinstance(d, bool)
              else v if d is None else type(d)(v))
  return out
