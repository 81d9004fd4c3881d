"""Forward-Referencing Jumps (FRJT) [reconstruction; the paper's exact definition is not public].

A stream of cells, each a token for (offset o in 1..max_jump, payload v in 0..P-1). A pointer
starts at 0; when the read position t equals the pointer, the cell is *executed*: p <- t + o.
Every other cell is a distractor drawn from the same distribution. Per-step target after
reading cell t: the payload of the last executed cell ('payload'), or the distance p - t - 1 in
0..max_jump-1 to the next executed cell ('pointer'). Depth = number of executed cells; the row
ends (PAD) where the last executed jump lands, so the instance is exactly `depth` jumps long.

Whether cell t is executed depends on the pointer, i.e. on the state after t-1 cells: the
update is data-dependent and serial (contrast `last_write.py`, where the token says so itself).

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
  name: ClassVar[str] = "frjt"

  def __post_init__(self):
    if self.target not in TARGETS:
      raise ValueError(f"target={self.target!r} is not one of {TARGETS}")
    if self.max_jump < 1 or self.n_payloads < 1:
      raise ValueError("max_jump and n_payloads must be >= 1")

  @property
  def pad_id(self) -> int:
    return self.max_jump * self.n_payloads

  @property
  def input_size(self) -> int:
    return self.pad_id + 1

  @property
  def output_size(self) -> int:
    return self.n_payloads if self.target == "payload" else self.max_jump

  def seq_len(self, max_depth: int) -> int:
    return self.max_jump * max_depth

  def encode(self, offset, payload):
    return (offset - 1) * self.n_payloads + payload

  def decode(self, token):
    return token // self.n_payloads + 1, token % self.n_payloads

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    t_len = self.seq_len(max_depth)
    k_depth, k_chain, k_off, k_pay = jax.random.split(rng, 4)
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
    return task_lib.Batch(
      inputs.astype(jnp.int32), jnp.where(mask, targets, 0).astype(jnp.int32), mask, depth_B
    )

  def solve(self, inputs_BxT) -> np.ndarray:
    """Serial reference: run the pointer over each row; -1 at PAD."""
    inputs_BxT = np.asarray(inputs_BxT)
    out = np.full(inputs_BxT.shape, -1, np.int64)
    for b, row in enumerate(inputs_BxT):
      pointer, value = 0, None
      for t, tok in enumerate(row):
        if tok == self.pad_id:
          break
        offset, payload = self.decode(int(tok))
        if t == pointer:
          pointer, value = t + offset, payload
        out[b, t] = value if self.target == "payload" else pointer - t - 1
    return out

  def depth_of(self, inputs_BxT) -> np.ndarray:
    """Number of executed cells per row (serial reference)."""
    inputs_BxT = np.asarray(inputs_BxT)
    depth = np.zeros(len(inputs_BxT), np.int64)
    for b, row in enumerate(inputs_BxT):
      pointer = 0
      for t, tok in enumerate(row):
        if tok == self.pad_id:
          break
        if t == pointer:
          pointer, depth[b] = t + self.decode(int(tok))[0], depth[b] + 1
    return depth
