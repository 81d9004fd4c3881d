"""Optimizers: AdamW, or Muon for matrices with AdamW for the rest (as in the author's code).

Muon orthogonalises the momentum of each weight matrix with 5 Newton-Schulz steps (coefficients
3.4445, -4.7750, 2.0315), scales it by sqrt(max(1, rows/cols)) and applies decoupled weight
decay. Matrices are every parameter with ndim >= 2 except the learned LSTM initial state; convs
are flattened to (9*d_in, d_out); attention blocks stacked on a leading layer axis are
orthogonalised per layer.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

NS_COEFFS = (3.4445, -4.7750, 2.0315)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  name: str = "adamw"            # 'adamw' | 'muon'
  lr: float = 3e-4               # AdamW peak learning rate
  muon_lr: float = 2e-3          # Muon peak learning rate (matrices)
  schedule: str = "constant"     # 'constant' | 'cosine' (after the warm-up)
  warmup_steps: int = 100
  min_lr_ratio: float = 0.1      # cosine floor, as a fraction of the peak
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.01
  muon_momentum: float = 0.95
  muon_nesterov: bool = True
  ns_steps: int = 5
  clip_norm: float = 1.0         # global-norm clipping; 0 disables

  def __post_init__(self):
    if self.name not in ("adamw", "muon"):
      raise ValueError(f"optim.name={self.name!r} is not one of ('adamw', 'muon')")
    if self.schedule not in ("constant", "cosine"):
      raise ValueError(f"optim.schedule={self.schedule!r} is not one of ('constant', 'cosine')")
    if self.lr <= 0 or self.muon_lr <= 0:
      raise ValueError(f"learning rates must be > 0, got lr={self.lr}, muon_lr={self.muon_lr}")
    if self.warmup_steps < 0 or self.clip_norm < 0:
      raise ValueError("optim.warmup_steps and optim.clip_norm must be >= 0")


def schedule(peak: float, cfg: OptimConfig, total_steps: int) -> optax.Schedule:
  warmup = optax.linear_schedule(0.0, peak, max(cfg.warmup_steps, 1))
  if cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  else:
    after = optax.cosine_decay_schedule(peak, max(total_steps - cfg.warmup_steps, 1),
                                        alpha=cfg.min_lr_ratio)
  return optax.join_schedules([warmup, after], [cfg.warmup_steps])


def orthogonalize(g_RxC, steps: int = 5, eps: float = 1e-7):
  """Newton-Schulz iteration towards the nearest semi-orthogonal matrix (float32)."""
  a, b, c = NS_COEFFS
  x = g_RxC.astype(jnp.float32)
  tall = x.shape[0] > x.shape[1]
  x = x.T if tall else x
  x = x / (jnp.linalg.norm(x) + eps)
  for _ in range(steps):
    s = x @ x.T
    x = a * x + (b * s + c * s @ s) @ x
  return x.T if tall else x


def _muon_direction(u, stacked: bool, steps: int):
  def one(m):
    m2 = m.reshape(-1, m.shape[-1])  # convs (3,3,D,E) -> (9D, E)
    rows, cols = m2.shape
    return (orthogonalize(m2, steps) * jnp.sqrt(max(1.0, rows / cols))).reshape(m.shape)
  return jax.vmap(one)(u) if stacked else one(u)


class MuonState(NamedTuple):
  mu: optax.Updates


def scale_by_muon(beta: float, nesterov: bool, steps: int,
                  stacked: bool = False) -> optax.GradientTransformation:
  """Momentum, then orthogonalisation; `stacked`: leaves carry a leading layer axis."""

  def init(params):
    return MuonState(jax.tree.map(jnp.zeros_like, params))

  def update(grads, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: beta * m + g, state.mu, grads)
    u = jax.tree.map(lambda m, g: g + beta * m, mu, grads) if nesterov else mu
    out = jax.tree.map(lambda x: _muon_direction(x, stacked, steps), u)
    return out, MuonState(mu)

  return optax.GradientTransformation(init, update)


def _path_names(path):
  return [getattr(k, "key", getattr(k, "name", getattr(k, "idx", None))) for k in path]


def param_labels(params):
  """'muon_stacked' | 'muon' | 'adam' per leaf."""
  def label(path, leaf):
    names = _path_names(path)
    if "h0" in names or "c0" in names:
      return "adam"
    if "blocks" in names:  # leading layer axis
      return "muon_stacked" if leaf.ndim >= 3 else "adam"
    return "muon" if leaf.ndim >= 2 else "adam"
  return jax.tree_util.tree_map_with_path(label, params)


def make(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
  adam_lr = schedule(cfg.lr, cfg, total_steps)
  adamw = optax.adamw(adam_lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
  clip = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm else []
  if cfg.name == "adamw":
    return optax.chain(*clip, adamw)
  muon_lr = schedule(cfg.muon_lr, cfg, total_steps)

  def muon(stacked):
    return optax.chain(
        scale_by_muon(cfg.muon_momentum, cfg.muon_nesterov, cfg.ns_steps, stacked),
        optax.add_decayed_weights(cfg.weight_decay),
        optax.scale_by_learning_rate(muon_lr))

  tx = optax.multi_transform({"adam": adamw, "muon": muon(False), "muon_stacked": muon(True)},
                             param_labels)
  return optax.chain(*clip, tx)
