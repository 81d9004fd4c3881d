"""The fixed-length depth protocol (task field fixed_len): one row length L at every depth.

For every task: rows are L tokens whatever the depth (training or far beyond it), the number of
state-changing tokens is the depth, the filler leaves the state as it is (for every state: a
row with its filler removed has the same targets), the targets are the serial solver's, and
the depth slots are spread over the whole row.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax.research import tasks
from rcfam_jax.research.tasks import task as task_lib

L = 96
TASKS = {
  "frjt": tasks.FRJT(fixed_len=L),
  "frjt_pointer": tasks.FRJT(max_jump=3, n_payloads=5, target="pointer", fixed_len=L),
  "maze": tasks.Maze(fixed_len=L),
  "maze3x5_mask": tasks.Maze(width=3, height=5, wall_encoding="mask", fixed_len=L),
  "last_write": tasks.LastWrite(fixed_len=L),
  "perm3": tasks.Permutations(fixed_len=L),
  "perm4": tasks.Permutations(n=4, fixed_len=L),
}
# The deepest depth each task's L holds: FRJT's instance is up to max_jump cells per jump.
CAPACITY = {
  "frjt": L // 4,
  "frjt_pointer": L // 3,
  "maze": L - 17,
  "maze3x5_mask": L - 16,
  "last_write": L,
  "perm3": L,
  "perm4": L,
}


@functools.cache
def _sampler(task, batch, max_depth):
  return jax.jit(
    functools.partial(task.sample_batch, batch=batch, min_depth=1, max_depth=max_depth)
  )


def _sample(task, batch, max_depth, depths=None, seed=0):
  fn = _sampler(task, batch, max_depth)
  return jax.tree.map(np.asarray, fn(jax.random.PRNGKey(seed), depths=depths))


def _filler(task, inputs):
  """Where the filler sits (tokens whose transition is the identity)."""
  if task.name == "frjt":
    return inputs == task.blank_id
  if task.name == "maze":
    out = inputs == task.stay_id
    out[:, : task.n_cells + 1] = False  # the walls and the start are no steps
    return out
  if task.name == "last_write":
    return inputs >= task.n_payloads
  return inputs == 0  # perm: the identity


def _steps(task, inputs):
  """Where the state-changing tokens sit (FRJT: the executed cells)."""
  if task.name == "frjt":
    out = np.zeros(inputs.shape, bool)
    for b, row in enumerate(inputs):
      pointer, cell = 0, -1
      for t, tok in enumerate(row):
        if tok != task.blank_id:
          cell += 1
          if cell == pointer:
            pointer, out[b, t] = cell + task.decode(int(tok))[0], True
    return out
  out = ~_filler(task, inputs)
  if task.name == "maze":
    out[:, : task.n_cells + 1] = False
  return out


def _state_changes(task, inputs):
  """Per row, how many tokens change the task's state (FRJT: the solver's executed cells)."""
  if task.name == "frjt":
    np.testing.assert_array_equal(task.depth_of(inputs), _steps(task, inputs).sum(1))
  return _steps(task, inputs).sum(1)


@pytest.mark.parametrize("name", list(TASKS))
def test_one_length_at_every_depth(name):
  """Depths inside a 1..16 training range, at 2x and 4x it, and the most L holds: all L long."""
  task, cap = TASKS[name], CAPACITY[name]
  depths = np.minimum([1, 2, 8, 16, 32, 64, cap - 1, cap], cap)
  b = _sample(task, 64, cap, depths=jnp.asarray(np.tile(depths, 8)))
  assert task.seq_len(cap) == task.seq_len(1) == L
  assert b.inputs.shape == b.targets.shape == b.mask.shape == (64, L)
  assert (b.inputs != task.pad_id).all()  # no padding anywhere
  assert b.inputs.min() >= 0 and b.inputs.max() < task.input_size
  assert b.targets.min() >= 0 and b.targets.max() < task.output_size
  np.testing.assert_array_equal(b.depth, np.tile(depths, 8))
  np.testing.assert_array_equal(_state_changes(task, b.inputs), b.depth)
  assert b.mask[:, -1].all()  # the last step (the state after the whole row) is scored
  with pytest.raises(ValueError, match=f"holds depths up to {cap}, not {cap + 1}"):
    task.seq_len(cap + 1)


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("max_depth", [16, 48])
def test_targets_are_the_solvers_and_filler_keeps_the_state(name, max_depth):
  task = TASKS[name]
  max_depth = min(max_depth, CAPACITY[name])
  b = _sample(task, 48, max_depth, seed=max_depth)
  solved = task.solve(b.inputs)
  np.testing.assert_array_equal(solved[b.mask], b.targets[b.mask])
  np.testing.assert_array_equal(solved >= 0, b.mask)  # scored exactly where the state is defined
  np.testing.assert_array_equal(_state_changes(task, b.inputs), b.depth)
  # filler: the target after a filler token is the target before it
  filler = _filler(task, b.inputs)
  prev = np.concatenate([np.full((48, 1), -1), solved[:, :-1]], axis=1)
  if task.name == "maze":
    prev[:, task.n_cells + 1] = b.inputs[:, task.n_cells] - task.start_id  # the start cell
  if task.name == "perm":
    prev[:, 0] = 0  # the identity
  np.testing.assert_array_equal(solved[filler], prev[filler])
  # ... for every state: dropping the filler (the variable protocol's row) changes no target
  for row, out, keep in zip(b.inputs, solved, ~filler):
    short = np.full_like(row, task.pad_id)
    short[: keep.sum()] = row[keep]
    np.testing.assert_array_equal(task.solve(short[None])[0][: keep.sum()], out[keep])


def test_frjt_instance_ends_inside_the_row():
  """The last executed jump lands just past the instance's last cell, at every depth."""
  task = TASKS["frjt"]
  pointer = tasks.FRJT(fixed_len=L, target="pointer")
  b = _sample(task, 64, CAPACITY["frjt"], seed=3)
  assert (pointer.solve(b.inputs)[:, -1] == 0).all()
  cells = (b.inputs != task.blank_id).sum(1)
  assert ((cells >= b.depth) & (cells <= task.max_jump * b.depth)).all()
  assert task.input_size == tasks.FRJT().input_size + 1  # BLANK joins the vocabulary


@pytest.mark.parametrize("name", ["perm3", "maze", "last_write", "frjt"])
@pytest.mark.parametrize("depth", [1, 8])
def test_depth_slots_are_spread_over_the_row(name, depth):
  """The non-filler tokens sit anywhere in the row, evenly (FRJT: the instance's cells, whose
  first is the executed cell 0)."""
  task = TASKS[name]
  b = _sample(task, 512, 8, depths=depth, seed=5 + depth)
  start = task.n_cells + 1 if task.name == "maze" else 0
  n_slots = L - start
  pos = np.nonzero(~_filler(task, b.inputs)[:, start:])[1]
  assert pos.min() == 0 and pos.max() == n_slots - 1
  assert abs(np.mean(pos) / (n_slots - 1) - 0.5) < 0.03
  assert abs(np.mean(pos < n_slots // 2) - 0.5) < 0.03


def test_spread_picks_exactly_n_slots():
  n = jnp.array([0, 1, 5, 7, 7])
  chosen, index = task_lib.spread(jax.random.PRNGKey(0), n, 7)
  chosen, index = np.asarray(chosen), np.asarray(index)
  np.testing.assert_array_equal(chosen.sum(1), n)
  np.testing.assert_array_equal(index, np.cumsum(chosen, 1) - 1)
  assert (index[0] == -1).all() and (index[-1] == np.arange(7)).all()


def test_bad_fixed_len():
  with pytest.raises(ValueError, match="fixed_len=0"):
    tasks.Permutations(fixed_len=0)
  with pytest.raises(ValueError, match="must be >= 18"):
    tasks.Maze(fixed_len=17)
  with pytest.raises(ValueError, match="holds depths up to 4, not 5"):
    tasks.FRJT(fixed_len=19).sample_batch(jax.random.PRNGKey(0), 2, 1, 5)
