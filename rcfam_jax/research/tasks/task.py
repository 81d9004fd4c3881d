"""Task protocol for the synthetic recurrence benchmarks (after chomsky_hierarchy's task.py).

A task is a frozen dataclass (hashable, so it can be closed over before `jax.jit`) with
  input_size:  input vocabulary, PAD included;
  output_size: number of target classes;
  seq_len(max_depth): the static sequence length that holds any instance of depth <= max_depth;
  sample_batch(rng, batch, min_depth, max_depth, depths=None) -> Batch: jittable, per-step
    targets and masks; the depth of each row is uniform in [min_depth, max_depth] or `depths`;
  solve(inputs_BxT) -> targets_BxT: the serial ground-truth solver (numpy), -1 where unscored.
Two protocols, chosen by the task field `fixed_len`:
  variable (fixed_len=None, the default): an instance is as long as its depth makes it; rows
    shorter than seq_len are right-padded with PAD and masked out, so a causal model gives the
    same predictions on a padded row as on the unpadded one. Depth and length grow together.
  fixed (fixed_len=L): every row, at every depth, is exactly L tokens long and has no PAD. The
    `depth` state-changing tokens sit at uniformly random positions (a random subset of the
    row's slots, in order; `spread`), and every other slot holds a filler token whose
    transition is the identity on the task's state. Training and evaluation rows share L, so
    accuracy against depth at one L measures depth alone. seq_len(max_depth) is L, or a
    ValueError when L cannot hold max_depth. Each task module states its filler.

Shape letters in the tasks: B rows (batch), T sequence positions, K entries per row (in
`jump_chain` the max_depth links of a chain).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np


class Batch(NamedTuple):
  inputs: jax.Array  # (B, T) int32 token ids
  targets: jax.Array  # (B, T) int32 class ids (0 where unscored)
  mask: jax.Array  # (B, T) bool: positions that are scored
  depth: jax.Array  # (B,) int32: serial depth of each row


class Task(Protocol):
  name: str
  input_size: int
  output_size: int

  def seq_len(self, max_depth: int) -> int: ...

  def sample_batch(self, rng, batch: int, min_depth: int, max_depth: int, depths=None) -> Batch: ...

  def solve(self, inputs_BxT: np.ndarray) -> np.ndarray: ...


def draw_depths(rng, batch: int, min_depth: int, max_depth: int, depths=None):
  """Per-row depths: `depths` if given (broadcast to (batch,)), else uniform in [min, max]."""
  if not 1 <= min_depth <= max_depth:
    raise ValueError(f"need 1 <= min_depth <= max_depth, got {min_depth}, {max_depth}")
  if depths is not None:
    return jnp.broadcast_to(jnp.asarray(depths, jnp.int32), (batch,))
  return jax.random.randint(rng, (batch,), min_depth, max_depth + 1, jnp.int32)


def jump_chain(rng, depth_B, max_depth: int, max_jump: int):
  """A chain of `depth` cells per row: p_0 = 0, p_{k+1} = p_k + o_k, o_k uniform in 1..max_jump.

  Returns (pos_BxK, jump_BxK, live_BxK, end_B) with K = max_depth; row b uses its first
  depth_B[b] links, and end_B = p_depth is the first position after the instance.
  """
  batch = depth_B.shape[0]
  jump = jax.random.randint(rng, (batch, max_depth), 1, max_jump + 1, jnp.int32)
  pos = jnp.cumsum(jump, axis=1) - jump
  live = jnp.arange(max_depth)[None, :] < depth_B[:, None]
  end = jnp.sum(jnp.where(live, jump, 0), axis=1)
  return pos, jump, live, end


def scatter_rows(base_BxT, idx_BxK, values_BxK, live_BxK):
  """base[b, idx[b, k]] = values[b, k] where live; dead entries are dropped."""
  t = base_BxT.shape[1]
  rows = jnp.arange(base_BxT.shape[0])[:, None]
  return base_BxT.at[rows, jnp.where(live_BxK, idx_BxK, t)].set(values_BxK, mode="drop")


def check_fixed_len(task, max_depth: int, capacity: int) -> int:
  """task.fixed_len if it holds `max_depth` state-changing tokens (`capacity` of them), else
  a ValueError."""
  if max_depth > capacity:
    raise ValueError(
      f"{task.name}: fixed_len={task.fixed_len} holds depths up to {capacity}, not {max_depth}"
    )
  return task.fixed_len


def spread(rng, n_B, length: int):
  """The fixed-length layout: per row, a uniformly random set of n_B[b] of `length` slots.

  Returns (chosen_BxT, index_BxT): `chosen` marks the set (exactly n_B[b] slots of row b);
  index = (number of chosen slots at or before t) - 1, so a row's core sequence c_0, c_1, ...
  placed in order on its chosen slots is c[index] there, and after a chosen slot the last
  core entry so far is c[index] (-1 before the first chosen slot).
  """
  u = jax.random.uniform(rng, (n_B.shape[0], length))
  rank = jnp.argsort(jnp.argsort(u, axis=1), axis=1)  # a uniform random permutation per row
  chosen = rank < n_B[:, None]
  return chosen, jnp.cumsum(chosen, axis=1, dtype=jnp.int32) - 1


def last_index(mask_BxT):
  """Index of the last True per row (0 for an all-False row)."""
  t = mask_BxT.shape[-1]
  return jnp.max(jnp.where(mask_BxT, jnp.arange(t), 0), axis=-1)
