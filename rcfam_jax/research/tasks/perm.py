"""Permutation composition (the word problem of S_n): a state that never synchronises.

Each token is a permutation g_t of n items (ids in lexicographic order of
`itertools.permutations(range(n))`); the target after step t is the running product
s_t = g_t o s_{t-1} (s_0 = identity), i.e. s_t[i] = g_t[s_{t-1}[i]]. Every g_t is a bijection
on the state, so two different states never merge: unlike FRJT (whose pointer chains coalesce)
and the maze (where bumps into walls merge positions), the target depends on every token, and
the serial depth is the full length. For n >= 5 the group is non-solvable and the word problem
is NC1-complete (Barrington), so no constant-depth circuit of the TC0 kind solves it at every
length.

Protocols (task.py). Variable (fixed_len=None): `depth` tokens, each uniform over all n!
elements (the identity included), then PAD; depth = length = number of tokens; every token is
scored. Fixed (fixed_len=L): every row is L tokens; `depth` slots chosen uniformly at random
(`task.spread`) hold permutations uniform over the n! - 1 non-identity elements, and every other
slot holds the identity (id 0), the filler. A non-identity g moves every state (g o s = s only
for g = id), so the running product changes at exactly the `depth` depth slots and nowhere
else; all L steps are scored. L holds depths up to L.

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
  fixed_len: int | None = None  # None: the variable-length protocol; L: every row is L tokens
  name: ClassVar[str] = "perm"

  def __post_init__(self):
    if not 2 <= self.n <= 5:
      raise ValueError(f"n={self.n}: need 2 <= n <= 5 (n! classes)")
    if self.fixed_len is not None and self.fixed_len < 1:
      raise ValueError(f"fixed_len={self.fixed_len} must be >= 1")

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
    if self.fixed_len is None:
      return max_depth
    return task_lib.check_fixed_len(self, max_depth, self.fixed_len)

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    if self.fixed_len is not None:
      return self._sample_fixed(rng, batch, min_depth, max_depth, depths)
    k_depth, k_g = jax.random.split(rng)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    g_BxT = jax.random.randint(k_g, (batch, max_depth), 0, self.order, jnp.int32)
    s_BxT = self._products(g_BxT)
    mask = jnp.arange(max_depth)[None, :] < depth_B[:, None]
    inputs = jnp.where(mask, g_BxT, self.pad_id)
    return task_lib.Batch(inputs, jnp.where(mask, s_BxT, 0), mask, depth_B)

  def _sample_fixed(self, rng, batch, min_depth, max_depth, depths):
    t_len = self.seq_len(max_depth)
    k_depth, k_pos, k_g = jax.random.split(rng, 3)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    chosen, _ = task_lib.spread(k_pos, depth_B, t_len)
    g_BxT = jax.random.randint(k_g, (batch, t_len), 1, self.order, jnp.int32)  # not the identity
    g_BxT = jnp.where(chosen, g_BxT, 0)
    mask = jnp.ones((batch, t_len), bool)
    return task_lib.Batch(g_BxT, self._products(g_BxT), mask, depth_B)

  def _products(self, g_BxT):
    """Running products s_t = g_t o ... o g_1 (ids), (B, T)."""
    table = jnp.asarray(cayley_table(self.n))

    def step(s_B, g_B):
      s_B = table[s_B, g_B]
      return s_B, s_B

    s0 = jnp.zeros(g_BxT.shape[:1], jnp.int32)  # id 0 = identity
    return jax.lax.scan(step, s0, g_BxT.T)[1].T

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
