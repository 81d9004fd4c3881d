"""Permutation composition (the word problem of S_n): a state that never synchronises.

Each token is a permutation g_t of n items (ids in lexicographic order of
`itertools.permutations(range(n))`); the target after step t is the running product
s_t = g_t o s_{t-1} (s_0 = identity), i.e. s_t[i] = g_t[s_{t-1}[i]]. Every g_t is a bijection
on the state, so two different states never merge: unlike FRJT (whose pointer chains coalesce)
and the maze (where bumps into walls merge positions), the target depends on every token, and
the serial depth is the full length. For n >= 5 the group is non-solvable and the word problem
is NC1-complete (Barrington), so no constant-depth circuit of the TC0 kind solves it at every
length. Depth = length = number of tokens; every step is scored.

Shape letters here: B rows (batch), T sequence positions (one per token).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from rcfam_jax.research.tasks import task as task_lib


@functools.cache
def elements(n: int) -> tuple[tuple[int, ...], ...]:
  """All permutations of range(n), lexicographic; element id = index."""
  return tuple(itertools.permutations(range(n)))


@functools.cache
def cayley_table(n: int) -> np.ndarray:
  """table[s, g] = id of g o s (apply s, then g)."""
  perms = elements(n)
  index = {p: i for i, p in enumerate(perms)}
  return np.array(
    [[index[tuple(g[s[i]] for i in range(n))] for g in perms] for s in perms], np.int32
  )


@dataclasses.dataclass(frozen=True)
class Permutations:
  n: int = 3
  name: ClassVar[str] = "perm"

  def __post_init__(self):
    if not 2 <= self.n <= 5:
      raise ValueError(f"n={self.n}: need 2 <= n <= 5 (n! classes)")

  @property
  def order(self) -> int:
    return math.factorial(self.n)

  @property
  def pad_id(self) -> int:
    return self.order

  @property
  def input_size(self) -> int:
    return self.order + 1

  @property
  def output_size(self) -> int:
    return self.order

  def seq_len(self, max_depth: int) -> int:
    return max_depth

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    k_depth, k_g = jax.random.split(rng)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    g_BxT = jax.random.randint(k_g, (batch, max_depth), 0, self.order, jnp.int32)
    table = jnp.asarray(cayley_table(self.n))

    def step(s_B, g_B):
      s_B = table[s_B, g_B]
      return s_B, s_B

    _, s_TxB = jax.lax.scan(step, jnp.zeros((batch,), jnp.int32), g_BxT.T)  # id 0 = identity
    mask = jnp.arange(max_depth)[None, :] < depth_B[:, None]
    inputs = jnp.where(mask, g_BxT, self.pad_id)
    return task_lib.Batch(inputs, jnp.where(mask, s_TxB.T, 0), mask, depth_B)

  def solve(self, inputs_BxT) -> np.ndarray:
    """Serial reference composing the permutations themselves; -1 at PAD."""
    perms = elements(self.n)
    index = {p: i for i, p in enumerate(perms)}
    inputs_BxT = np.asarray(inputs_BxT)
    out = np.full(inputs_BxT.shape, -1, np.int64)
    for b, row in enumerate(inputs_BxT):
      state = tuple(range(self.n))
      for t, tok in enumerate(row):
        if tok == self.pad_id:
          break
        g = perms[int(tok)]
        state = tuple(g[i] for i in state)
        out[b, t] = index[state]
    return out
