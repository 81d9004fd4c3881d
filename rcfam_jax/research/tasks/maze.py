"""Withheld Maze Position Tracking [reconstruction; the paper's exact definition is not public].

Sequence: W*H wall tokens (row-major; token = 4-bit mask of the open sides, bit d for direction
d in U, D, L, R), one start-cell token, then `depth` move tokens. A move into a wall (or the
border) is a no-op. The position is never shown again; the target after every move is the
cell id y*W + x. Mazes are perfect (a uniformly random-order Kruskal spanning tree), moves are
uniform over the four directions, so in a perfect maze many moves bump into walls.

Protocols (task.py). Variable (fixed_len=None): the walls, the start, `depth` moves, then PAD;
every move is scored; rows are W*H + 1 + depth long. Fixed (fixed_len=L): every row is L
tokens: the W*H walls and the start, then L - W*H - 1 slots of which `depth`, chosen uniformly
at random (`task.spread`), hold moves (uniform over U, D, L, R, as above) and every other slot
holds STAY (`stay_id`, a token of its own: the position does not change), the filler. Depth =
number of move tokens, the tokens whose transition is not the identity on positions; as in the
variable protocol a move may bump into a wall, and only the position tells, so every move is
serial work and STAY is none. (A bump is not used as the filler for exactly that reason: it is
a no-op only given the position.) Every slot after the start is scored. L holds depths up to
L - W*H - 1.

Shape letters here: B rows (batch), T sequence positions, N maze cells (W*H), D the four
directions, K move steps (max_depth). W and H are the maze's width and height.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from rcfam_jax.research.tasks import task as task_lib

DY = (-1, 1, 0, 0)  # U, D, L, R
DX = (0, 0, -1, 1)
OPPOSITE = (1, 0, 3, 2)


@dataclasses.dataclass(frozen=True)
class Maze:
  width: int = 4
  height: int = 4
  wall_encoding: str = "cell"  # 'cell': token = cell * 16 + mask; 'mask': token = mask
  fixed_len: int | None = None  # None: the variable-length protocol; L: every row is L tokens
  name: ClassVar[str] = "maze"

  def __post_init__(self):
    if self.wall_encoding not in ("cell", "mask"):
      raise ValueError(f"wall_encoding={self.wall_encoding!r} is not 'cell' or 'mask'")
    if self.fixed_len is not None and self.fixed_len < self.n_cells + 2:
      raise ValueError(f"fixed_len={self.fixed_len} must be >= {self.n_cells + 2} (walls, start)")

  @property
  def n_cells(self) -> int:
    return self.width * self.height

  @property
  def start_id(self) -> int:  # start tokens: start_id + cell
    return 16 * (self.n_cells if self.wall_encoding == "cell" else 1)

  @property
  def move_id(self) -> int:  # move tokens: move_id + direction
    return self.start_id + self.n_cells

  @property
  def pad_id(self) -> int:
    return self.move_id + 4

  @property
  def stay_id(self) -> int:  # the fixed protocol's filler; in the vocabulary only there
    return self.pad_id + 1

  @property
  def input_size(self) -> int:
    return self.pad_id + 1 + (self.fixed_len is not None)

  @property
  def output_size(self) -> int:
    return self.n_cells

  def seq_len(self, max_depth: int) -> int:
    if self.fixed_len is None:
      return self.n_cells + 1 + max_depth
    return task_lib.check_fixed_len(self, max_depth, self.fixed_len - self.n_cells - 1)

  def _edges(self):
    """Interior edges (a, b, direction a->b) as numpy arrays."""
    w, h = self.width, self.height
    a, b, d = [], [], []
    for y in range(h):
      for x in range(w):
        if x + 1 < w:
          a.append(y * w + x), b.append(y * w + x + 1), d.append(3)
        if y + 1 < h:
          a.append(y * w + x), b.append((y + 1) * w + x), d.append(1)
    return np.array(a), np.array(b), np.array(d)

  def sample_maze(self, rng):
    """One perfect maze: open_NxD bool (cell, direction) -> the side is open."""
    a_np, b_np, d_np = self._edges()
    a, b, n_e = jnp.asarray(a_np), jnp.asarray(b_np), len(a_np)
    order = jax.random.permutation(rng, n_e)

    def add_edge(i, carry):  # Kruskal with component labels (n_cells is small)
      label, open_e = carry
      e = order[i]
      la, lb = label[a[e]], label[b[e]]
      label = jnp.where(label == lb, la, label)
      return label, open_e.at[e].set(la != lb)

    _, open_e = jax.lax.fori_loop(
      0, n_e, add_edge, (jnp.arange(self.n_cells), jnp.zeros(n_e, bool))
    )
    open_nxd = jnp.zeros((self.n_cells, 4), bool).at[a_np, d_np].set(open_e)
    return open_nxd.at[b_np, np.array(OPPOSITE)[d_np]].set(open_e)

  def sample_batch(
    self, rng, batch: int, min_depth: int, max_depth: int, depths=None
  ) -> task_lib.Batch:
    n = self.n_cells
    fixed = self.fixed_len is not None
    k_depth, k_maze, k_start, k_move, *k_pos = jax.random.split(rng, 5 if fixed else 4)
    depth_B = task_lib.draw_depths(k_depth, batch, min_depth, max_depth, depths)
    open_BxNxD = jax.vmap(self.sample_maze)(jax.random.split(k_maze, batch))
    start_B = jax.random.randint(k_start, (batch,), 0, n, jnp.int32)
    n_slots = self.seq_len(max_depth) - n - 1  # K: max_depth, or the fixed row's move slots
    move_BxK = jax.random.randint(k_move, (batch, n_slots), 0, 4, jnp.int32)
    if fixed:
      live, _ = task_lib.spread(k_pos[0], depth_B, n_slots)
      move_BxK = jnp.where(live, move_BxK, 4)  # direction 4: STAY
    else:
      live = jnp.arange(max_depth)[None, :] < depth_B[:, None]
    delta = jnp.array([dy * self.width + dx for dy, dx in zip(DY, DX)] + [0], jnp.int32)
    open_BxNxD = jnp.concatenate([open_BxNxD, jnp.zeros((batch, n, 1), bool)], axis=2)
    rows = jnp.arange(batch)

    def step(pos_B, move_B):
      pos_B = jnp.where(open_BxNxD[rows, pos_B, move_B], pos_B + delta[move_B], pos_B)
      return pos_B, pos_B

    _, pos_KxB = jax.lax.scan(step, start_B, move_BxK.T)
    walls = jnp.sum(open_BxNxD[..., :4] * (2 ** jnp.arange(4)), axis=-1)
    if self.wall_encoding == "cell":
      walls = walls + 16 * jnp.arange(n)
    inputs = jnp.concatenate(
      [
        walls,
        self.start_id + start_B[:, None],
        jnp.where(live, self.move_id + move_BxK, self.stay_id if fixed else self.pad_id),
      ],
      axis=1,
    )
    scored = jnp.ones_like(live) if fixed else live  # fixed: STAY steps are scored too
    prefix = jnp.zeros((batch, n + 1), jnp.int32)
    targets = jnp.concatenate([prefix, jnp.where(scored, pos_KxB.T, 0)], axis=1)
    mask = jnp.concatenate([prefix.astype(bool), scored], axis=1)
    return task_lib.Batch(inputs.astype(jnp.int32), targets.astype(jnp.int32), mask, depth_B)

  def solve(self, inputs_BxT) -> np.ndarray:
    """Serial reference: decode walls and start, then walk (STAY: stay); -1 where unscored."""
    inputs_BxT = np.asarray(inputs_BxT)
    n, w = self.n_cells, self.width
    out = np.full(inputs_BxT.shape, -1, np.int64)
    for b, row in enumerate(inputs_BxT):
      walls, pos = row[:n] % 16, int(row[n]) - self.start_id
      for t in range(n + 1, len(row)):
        if row[t] == self.pad_id:
          break
        d = int(row[t]) - self.move_id
        if row[t] != self.stay_id and walls[pos] >> d & 1:
          pos = pos + DY[d] * w + DX[d]
        out[b, t] = pos
    return out
