"""Optimizers: AdamW, or Muon for the weight matrices with AdamW for the rest.

Muon is `optax.contrib.muon`: momentum, 5 Newton-Schulz steps (3.4445, -4.7750, 2.0315), the
width scale sqrt(max(1, fan_out / fan_in)) and decoupled weight decay; AdamW for every leaf whose
dimension numbers are None. `muon_dims` is the one grouping rule. It reproduces the author's
convention (fbamtrain `src/optimizers.cpp`, Muon with `ShouldTransposeScale`; the toy
implementation's Keller Jordan Muon, whose scale is sqrt(max(1, rows / cols)) of a PyTorch
(out, in) weight), translated to this repository's layouts:
  dense (in, out): fan_in = in, fan_out = out (qkv sqrt 3, MLP up 2, LSTM W_x and W_h 2, the
    action head sqrt(V / H));
  conv (3, 3, in, out): fan_in = 9 in (the author flattens to (out, 9 in));
  stacked attention blocks (L, in, out): L is a batch axis (one orthogonalisation per layer);
  embedding tables (rows, d): fan_out = rows (stored as the author stores them, unscaled for the
    codepoint table, sqrt(R C / d) for positions);
  1-D parameters, the six colour vectors (one (6, d) matrix here, six vectors there) and the
    learned initial state (h0, c0): AdamW, elementwise, so the same as the author's vectors.
Differences, all numerically small: optax's momentum is an EMA with bias correction (the author's
has none: the same update at his momentum 0, a different g/m mix in the first steps otherwise);
`muon_nesterov` also makes the AdamW group Nesterov (optax's muon shares the flag; the author's
run uses momentum 0 with nesterov off, which equals his Nesterov form at momentum 0);
Newton-Schulz runs in float32 (the author: bfloat16) with the AdamW eps as its epsilon.
"""

from __future__ import annotations

import dataclasses

import jax
import optax
from optax.contrib import MuonDimensionNumbers

DENSE = MuonDimensionNumbers(reduction_axis=0, output_axis=1)
TABLE = MuonDimensionNumbers(reduction_axis=1, output_axis=0)  # (rows, d): fan_out = rows
STACKED = MuonDimensionNumbers(reduction_axis=1, output_axis=2)  # (L, in, out)
CONV = MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)  # (3, 3, in, out)
ADAM_ONLY = ("h0", "c0", "color")  # matrices here, vectors in the author's code
TABLES = ("cp_embed", "pos_embed")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  name: str = "adamw"  # 'adamw' | 'muon'
  lr: float = 3e-4  # AdamW peak learning rate
  muon_lr: float = 2e-3  # Muon peak learning rate (matrices)
  schedule: str = "constant"  # 'constant' | 'cosine' (after the warm-up)
  warmup_steps: int = 100
  min_lr_ratio: float = 0.1  # cosine floor, as a fraction of the peak
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.01  # both groups, decoupled (multiplied by the learning rate)
  muon_momentum: float = 0.95
  muon_nesterov: bool = True  # optax.contrib.muon applies it to both groups
  ns_steps: int = 5
  clip_norm: float = 1.0  # global-norm clipping; 0 disables

  def __post_init__(self):
    if self.name not in ("adamw", "muon"):
      raise ValueError(f"optim.name={self.name!r} is not one of ('adamw', 'muon')")
    if self.schedule not in ("constant", "cosine"):
      raise ValueError(f"optim.schedule={self.schedule!r} is not one of ('constant', 'cosine')")
    if self.lr <= 0 or self.muon_lr <= 0:
      raise ValueError(f"learning rates must be > 0, got lr={self.lr}, muon_lr={self.muon_lr}")
    if self.warmup_steps < 0 or self.clip_norm < 0:
      raise ValueError("optim.warmup_steps and optim.clip_norm must be >= 0")
    if not 0.0 <= self.muon_momentum < 1.0:
      raise ValueError(f"optim.muon_momentum must be in [0, 1), got {self.muon_momentum}")


def schedule(peak: float, cfg: OptimConfig, total_steps: int) -> optax.Schedule:
  """Linear warm-up over `warmup_steps` (none at 0), then constant or cosine to the floor."""
  if cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  else:
    after = optax.cosine_decay_schedule(
      peak, max(total_steps - cfg.warmup_steps, 1), alpha=cfg.min_lr_ratio
    )
  if not cfg.warmup_steps:
    return after
  warmup = optax.linear_schedule(0.0, peak, cfg.warmup_steps)
  return optax.join_schedules([warmup, after], [cfg.warmup_steps])


def _names(path) -> list:
  return [getattr(k, "key", getattr(k, "name", getattr(k, "idx", None))) for k in path]


def muon_dims(params):
  """Per leaf: the MuonDimensionNumbers Muon orthogonalises it with, or None for AdamW."""

  def dims(path, leaf):
    names = _names(path)
    if leaf.ndim < 2 or any(n in ADAM_ONLY for n in names):
      return None
    if any(n in TABLES for n in names):
      return TABLE
    if "blocks" in names:  # a leading layer axis: (L, in, out) matrices, (L, d) vectors
      return STACKED if leaf.ndim == 3 else None
    if leaf.ndim == 4:
      return CONV
    if leaf.ndim == 2:
      return DENSE
    raise ValueError(
      f"no Muon rule for parameter {jax.tree_util.keystr(path)} of shape "
      f"{leaf.shape}: add one to optim.muon_dims"
    )

  return jax.tree_util.tree_map_with_path(dims, params)


def make(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
  adam_lr = schedule(cfg.lr, cfg, total_steps)
  clip = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm else []
  if cfg.name == "adamw":
    tx = optax.adamw(adam_lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  else:
    tx = optax.contrib.muon(
      schedule(cfg.muon_lr, cfg, total_steps),
      ns_steps=cfg.ns_steps,
      beta=cfg.muon_momentum,
      eps=cfg.eps,
      weight_decay=cfg.weight_decay,
      nesterov=cfg.muon_nesterov,
      adam_b1=cfg.b1,
      adam_b2=cfg.b2,
      adam_weight_decay=cfg.weight_decay,
      adam_learning_rate=adam_lr,
      muon_weight_dimension_numbers=muon_dims,
    )
  return optax.chain(*clip, tx)
