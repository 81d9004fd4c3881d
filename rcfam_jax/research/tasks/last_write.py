"""Last-Write control task: the associative twin of FRJT [reconstruction].

Cells are either writes (token v in 0..P-1) or ignored distractors (token P + v). The per-step
target is the payload of the last write. Writes are spaced exactly like FRJT's executed cells
(gaps uniform in 1..max_gap), so lengths and depths match FRJT; depth = number of writes.

Unlike FRJT, whether a cell counts is stated by the token itself: the state update
h' = v if write else h is an associative set/keep operator (the flip-flop language), i.e. an
input aggregation h_t = (+)_{s<=t} phi(x_s) with phi blind to h_{s-1}. A scan or one attention
layer ("attend to the latest write") solves it at any depth, so a cliff here would be about
length, not serial depth.

Protocols (task.py). Variable (fixed_len=None): the layout above, cell 0 a write, then PAD; every
cell is scored. Fixed (fixed_len=L): every row is L cells; `depth` slots chosen uniformly at
random (`task.spread`) hold writes (payload uniform in 0..P-1), and every other slot holds a
distractor (payload uniform), the filler: h' = h. Depth = number of writes, the tokens whose
update is not the identity (a write may repeat the current value, as in the variable
protocol). Before the first write the target is undefined and unscored; from it on, every
cell is scored. L holds depths up to L.

Shape letters here: B rows (batch), T sequence positions. P is the number of payloads.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from rcfam_jax.research.tasks import task as task_lib


@dataclasses.dataclass(frozen=True)
class LastWrite:
  max_gap: int = 4
  n_payloads: int = 8
  fixed_len: int | None = None  # None: the variable-length protocol; L: every row is L cells
  name: ClassVar[str] = "last_write"

  def __post_init__(self):
    if self.fixed_len is not None and self.fixed_len < 1:
      raise ValueError(f"fixed_len={self.fixed_len} must be >= 1")

  @property
  def pad_id(self) -> int:
    return 2 * self.n_payloads

  @property
  def input_size(self) -> int:
    return self.pad_id + 1

  @property
  def output_size(self) -> int:
    return self.n_payloads

  def seq_len(self, max_depth: int) -> int:
    if self.fixed_len is None:
      return self.max_gap * max_depth
    return task_lib.check_fixed_len(self, max_depth, self.fixed_len)

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    t_len = self.seq_len(max_depth)
    k_depth, k_chain, k_pay = jax.random.split(rng, 3)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    payload = jax.random.randint(k_pay, (batch, t_len), 0, self.n_payloads, jnp.int32)
    t = jnp.arange(t_len)
    if self.fixed_len is None:
      pos, _, live, end_B = task_lib.jump_chain(k_chain, depth_B, max_depth, self.max_gap)
      write = task_lib.scatter_rows(jnp.zeros((batch, t_len), bool), pos, live, live)
      mask = t[None, :] < end_B[:, None]
      inputs = jnp.where(mask, jnp.where(write, payload, self.n_payloads + payload), self.pad_id)
    else:
      write, _ = task_lib.spread(k_chain, depth_B, t_len)
      mask = jnp.cumsum(write, axis=1) > 0  # from the first write on
      inputs = jnp.where(write, payload, self.n_payloads + payload)
    last = jax.lax.cummax(jnp.where(write, t, -1), axis=1)  # >= 0 where scored
    targets = jnp.where(mask, jnp.take_along_axis(payload, jnp.maximum(last, 0), axis=1), 0)
    return task_lib.Batch(inputs.astype(jnp.int32), targets.astype(jnp.int32), mask, depth_B)

  def solve(self, inputs_BxT) -> np.ndarray:
    """Serial reference; -1 at PAD and before the first write."""
    inputs_BxT = np.asarray(inputs_BxT)
    out = np.full(inputs_BxT.shape, -1, np.int64)
    for b, row in enumerate(inputs_BxT):
      value = -1
      for t, tok in enumerate(row):
        if tok == self.pad_id:
          break
        if tok < self.n_payloads:
          value = int(tok)
        out[b, t] = value
    return out
