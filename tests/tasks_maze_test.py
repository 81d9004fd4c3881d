"""Withheld Maze: mazes are perfect, and the serial solver agrees with brute force."""

import collections

import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfam_jax.research.tasks import Maze
from rcfam_jax.research.tasks.maze import DX, DY


def open_edges(task: Maze, walls):
  """Set of frozenset({a, b}) for every open side, checking both cells agree."""
  w, h = task.width, task.height
  edges = set()
  for cell, mask in enumerate(walls):
    y, x = divmod(cell, w)
    for d in range(4):
      ny, nx = y + DY[d], x + DX[d]
      inside = 0 <= ny < h and 0 <= nx < w
      if mask >> d & 1:
        assert inside, "border side open"
        edges.add(frozenset((cell, ny * w + nx)))
  return edges


def test_mazes_are_perfect_and_symmetric():
  for task in (Maze(), Maze(width=5, height=3)):
    sample = jax.jit(lambda k: task.sample_batch(k, 64, 1, 2))
    walls = np.asarray(sample(jax.random.PRNGKey(7)).inputs)[:, : task.n_cells]
    for row in walls:
      edges = open_edges(task, row)
      # symmetric: every open edge is listed from both sides
      for e in edges:
        a, b = sorted(e)
        d = next(
          d
          for d in range(4)
          if a + DY[d] * task.width + DX[d] == b and abs(DX[d]) + abs(DY[d]) == 1
        )
        assert row[a] >> d & 1 and row[b] >> (d ^ 1) & 1
      assert len(edges) == task.n_cells - 1  # a spanning tree ...
      seen, todo = {0}, [0]
      while todo:  # ... that is connected
        c = todo.pop()
        for e in edges:
          if c in e:
            (o,) = e - {c}
            if o not in seen:
              seen.add(o), todo.append(o)
      assert len(seen) == task.n_cells


def test_mazes_vary_and_moves_bump_walls():
  task = Maze()
  b = jax.tree.map(
    np.asarray, jax.jit(lambda k: task.sample_batch(k, 128, 16, 16))(jax.random.PRNGKey(0))
  )
  assert len({tuple(r[: task.n_cells]) for r in b.inputs}) > 100
  pos = b.targets[:, task.n_cells + 1 :]
  stays = (pos[:, 1:] == pos[:, :-1]).mean()
  assert 0.2 < stays < 0.8, stays  # many no-op bumps, but the walker moves
  assert len(collections.Counter(pos.ravel().tolist())) == task.n_cells


SMALL = Maze(width=3, height=3)
PREFIXES = np.asarray(
  jax.jit(lambda k: SMALL.sample_batch(k, 64, 1, 1))(jax.random.PRNGKey(5)).inputs
)[:, : SMALL.n_cells + 1]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_maze_solver_matches_brute_force(data):
  """Moves 0..3 and (4) the fixed-length protocol's STAY, which keeps the position."""
  task = SMALL
  row = PREFIXES[data.draw(st.integers(0, len(PREFIXES) - 1))]
  moves = data.draw(st.lists(st.integers(0, 4), max_size=12))
  tokens = [task.stay_id if d == 4 else task.move_id + d for d in moves]
  row = np.concatenate([row, np.array(tokens, np.int64), [task.pad_id]])
  edges = open_edges(task, row[: task.n_cells])
  y, x = divmod(int(row[task.n_cells]) - task.start_id, task.width)
  want = []
  for d in moves:  # brute force: coordinates + an edge set
    if d == 4:
      want.append(y * task.width + x)
      continue
    ny, nx = y + DY[d], x + DX[d]
    if frozenset((y * task.width + x, ny * task.width + nx)) in edges:
      y, x = ny, nx
    want.append(y * task.width + x)
  got = task.solve(row[None])[0]
  np.testing.assert_array_equal(got[task.n_cells + 1 : task.n_cells + 1 + len(moves)], want)
  assert (got[: task.n_cells + 1] == -1).all() and got[-1] == -1


def test_wall_encodings_carry_the_same_maze():
  cell, mask = Maze(), Maze(wall_encoding="mask")
  a, b = (
    jax.tree.map(
      np.asarray, jax.jit(lambda k, t=t: t.sample_batch(k, 32, 1, 8))(jax.random.PRNGKey(3))
    )
    for t in (cell, mask)
  )
  n = cell.n_cells
  np.testing.assert_array_equal(a.inputs[:, :n] // 16, np.broadcast_to(np.arange(n), (32, n)))
  np.testing.assert_array_equal(a.inputs[:, :n] % 16, b.inputs[:, :n])
  np.testing.assert_array_equal(a.inputs[:, n:] - cell.start_id, b.inputs[:, n:] - mask.start_id)
  np.testing.assert_array_equal(a.targets, b.targets)
  np.testing.assert_array_equal(mask.solve(b.inputs)[b.mask], b.targets[b.mask])
  assert cell.input_size == 16 * 16 + 16 + 4 + 1 and mask.input_size == 16 + 16 + 4 + 1
  assert Maze(fixed_len=40).input_size == cell.input_size + 1  # STAY joins the vocabulary
