"""Token-level baselines for the depth benchmarks; each maps ids (B, T) -> logits (B, T, V).

Every module exports init(key, cfg), embed(params, tokens), apply_embeddings(params, x, cfg) and
apply(params, tokens, cfg); `init`/`apply` here dispatch on cfg.kind.
Shape letters in the baselines: B batch, T tokens, V output classes (cfg.output_size); each
module names the rest.
"""

from __future__ import annotations

import math

import jax

from rcfam_jax.research.baselines import lstm, mamba, transformer
from rcfam_jax.research.baselines.config import KINDS, ModelConfig

MODULES = {"transformer": transformer, "mamba": mamba, "lstm": lstm}


def module(cfg: ModelConfig):
  return MODULES[cfg.kind]


def init(key, cfg: ModelConfig):
  return module(cfg).init(key, cfg)


def apply(params, tokens_BxT, cfg: ModelConfig):
  return module(cfg).apply(params, tokens_BxT, cfg)


def param_count(params) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


__all__ = ["KINDS", "MODULES", "ModelConfig", "apply", "init", "module", "param_count"]
