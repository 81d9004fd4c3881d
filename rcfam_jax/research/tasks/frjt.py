"""Forward-Referencing Jumps (FRJT) [reconstruction; the paper's exact definition is not public].

A stream of cells, each a token for (offset o in 1..max_jump, payload v in 0..P-1). A pointer
starts at 0; when the read position t equals the pointer, the cell is *executed*: p <- t + o.
Every other cell is a distractor drawn from the same distribution. Per-step target after
reading cell t: the payload of the last executed cell ('payload'), or the distance p - t - 1 in
0..max_jump-1 to the next executed cell ('pointer'). Depth = number of executed cells; the row
ends (PAD) where the last executed jump lands, so the instance is exactly `depth` jumps long.

Whether cell t is executed depends on the pointer, i.e. on the state after t-1 cells: the
update is data-dependent and serial (contrast `last_write.py`, where the token says so itself).

Protocols (task.py). Variable (fixed_len=None): the layout above, then PAD. Fixed (fixed_len=L):
every row is L tokens. The instance is drawn as in the variable protocol, a stream of
n = o_0 + ... + o_{depth-1} cells (cell 0 executed, exactly `depth` executed cells, the last
jump landing just past cell n-1); its n cells are placed in order on n slots of the row chosen
uniformly at random (`task.spread`), and every other slot holds BLANK (`blank_id`, a token of
its own), the filler. Positions, the pointer and the offsets count *cells*: BLANK is not a
cell and changes nothing (pointer, payload, cell count), so the executed cells are exactly
the `depth` tokens that change the state (pointer, payload); distractor cells leave it as it
is, as in the variable protocol. Targets are scored from the first cell on (before it the
payload is undefined), at cells and BLANKs alike; 'pointer' is counted in cells. n <= J*depth,
so L holds depths up to L // J.

Shape letters here: B rows (batch), T sequence positions. P is the number of payloads.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from rcfam_jax.research.tasks import task as task_lib

TARGETS = ("payload", "pointer")


@dataclasses.dataclass(frozen=True)
class FRJT:
  max_jump: int = 4
  n_payloads: int = 8
  target: str = "payload"
  fixed_len: int | None = None  # None: the variable-length protocol; L: every row is L tokens
  name: ClassVar[str] = "frjt"

  def __post_init__(self):
    if self.target not in TARGETS:
      raise ValueError(f"target={self.target!r} is not one of {TARGETS}")
    if self.max_jump < 1 or self.n_payloads < 1:
      raise ValueError("max_jump and n_payloads must be >= 1")
    if self.fixed_len is not None and self.fixed_len < self.max_jump:
      raise ValueError(f"fixed_len={self.fixed_len} must be >= max_jump={self.max_jump}")

  @property
  def pad_id(self) -> int:
    return self.max_jump * self.n_payloads

  @property
  def blank_id(self) -> int:  # the fixed protocol's filler; in the vocabulary only there
    return self.pad_id + 1

  @property
  def input_size(self) -> int:
    return self.pad_id + 1 + (self.fixed_len is not None)

  @property
  def output_size(self) -> int:
    return self.n_payloads if self.target == "payload" else self.max_jump

  def seq_len(self, max_depth: int) -> int:
    if self.fixed_len is None:
      return self.max_jump * max_depth
    return task_lib.check_fixed_len(self, max_depth, self.fixed_len // self.max_jump)

  def encode(self, offset, payload):
    return (offset - 1) * self.n_payloads + payload

  def decode(self, token):
    return token // self.n_payloads + 1, token % self.n_payloads

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    fixed = self.fixed_len is not None
    t_len = self.max_jump * max_depth  # the variable row (the fixed protocol's n cells fit)
    k_depth, k_chain, k_off, k_pay, *k_pos = jax.random.split(rng, 5 if fixed else 4)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    pos, jump, live, end_B = task_lib.jump_chain(k_chain, depth_B, max_depth, self.max_jump)
    offset = jax.random.randint(k_off, (batch, t_len), 1, self.max_jump + 1, jnp.int32)
    offset = task_lib.scatter_rows(offset, pos, jump, live)
    executed = task_lib.scatter_rows(jnp.zeros((batch, t_len), bool), pos, live, live)
    payload = jax.random.randint(k_pay, (batch, t_len), 0, self.n_payloads, jnp.int32)
    t = jnp.arange(t_len)
    mask = t[None, :] < end_B[:, None]
    inputs = jnp.where(mask, self.encode(offset, payload), self.pad_id)
    last = jax.lax.cummax(jnp.where(executed, t, -1), axis=1)  # >= 0: cell 0 is executed
    if self.target == "payload":
      targets = jnp.take_along_axis(payload, last, axis=1)
    else:
      targets = last + jnp.take_along_axis(offset, last, axis=1) - t - 1
    if fixed:  # cell k of the instance goes to the k-th chosen slot; BLANK elsewhere
      chosen, cell = task_lib.spread(k_pos[0], end_B, self.seq_len(max_depth))
      at = lambda x: jnp.take_along_axis(x, jnp.maximum(cell, 0), axis=1)
      inputs = jnp.where(chosen, at(inputs), self.blank_id)
      targets, mask = at(targets), cell >= 0
    return task_lib.Batch(
      inputs.astype(jnp.int32), jnp.where(mask, targets, 0).astype(jnp.int32), mask, depth_B
    )

  def solve(self, inputs_BxT) -> np.ndarray:
    """Serial reference: run the pointer over each row's cells (BLANKs are no cells); -1 at PAD
    and before the first cell."""
    inputs_BxT = np.asarray(inputs_BxT)
    out = np.full(inputs_BxT.shape, -1, np.int64)
    for b, row in enumerate(inputs_BxT):
      pointer, value, cell = 0, None, -1
      for t, tok in enumerate(row):
        if tok == self.pad_id:
          break
        if tok != self.blank_id:
          cell += 1
          offset, payload = self.decode(int(tok))
          if cell == pointer:
            pointer, value = cell + offset, payload
        if cell >= 0:
          out[b, t] = value if self.target == "payload" else pointer - cell - 1
    return out

  def depth_of(self, inputs_BxT) -> np.ndarray:
    """Number of executed cells per row (serial reference)."""
    inputs_BxT = np.asarray(inputs_BxT)
    depth = np.zeros(len(inputs_BxT), np.int64)
    for b, row in enumerate(inputs_BxT):
      pointer, cell = 0, -1
      for tok in row:
        if tok == self.pad_id:
          break
        if tok == self.blank_id:
          continue
        cell += 1
        if cell == pointer:
          pointer, depth[b] = cell + self.decode(int(tok))[0], depth[b] + 1
    return depth
