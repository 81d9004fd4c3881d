"""Sampler contract for every task: jittable, deterministic, depth range, solver agreement."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax.research import tasks
from rcfam_jax.research.tasks import task as task_lib

TASKS = [
  tasks.FRJT(),
  tasks.FRJT(target="pointer", max_jump=3, n_payloads=5),
  tasks.Maze(),
  tasks.Maze(width=3, height=5, wall_encoding="mask"),
  tasks.LastWrite(),
  tasks.Permutations(),
  tasks.Permutations(n=4),
  # the fixed-length protocol (tests/tasks_fixed_test.py): every row fixed_len tokens
  tasks.FRJT(fixed_len=40),
  tasks.FRJT(target="pointer", max_jump=3, n_payloads=5, fixed_len=21),
  tasks.Maze(fixed_len=30),
  tasks.Maze(width=3, height=5, wall_encoding="mask", fixed_len=23),
  tasks.LastWrite(fixed_len=12),
  tasks.Permutations(fixed_len=7),
  tasks.Permutations(n=4, fixed_len=16),
]
IDS = ["frjt", "frjt_pointer", "maze", "maze3x5_mask", "last_write", "perm3", "perm4"]
IDS += [f"{i}_fixed" for i in IDS]


@functools.cache
def _sampler(task, batch, lo, hi):
  return jax.jit(functools.partial(task.sample_batch, batch=batch, min_depth=lo, max_depth=hi))


def _sample(task, seed, batch, lo, hi, depths=None):
  fn = _sampler(task, batch, lo, hi)
  return jax.tree.map(np.asarray, fn(jax.random.PRNGKey(seed), depths=depths))


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_shapes_vocab_and_padding(task):
  b = _sample(task, 0, 48, 3, 7)
  t = task.seq_len(7)
  assert t == (task.fixed_len or t)
  assert b.inputs.shape == b.targets.shape == b.mask.shape == (48, t)
  assert b.inputs.dtype == np.int32 and b.targets.dtype == np.int32 and b.mask.dtype == bool
  assert b.inputs.min() >= 0 and b.inputs.max() < task.input_size
  assert b.targets.min() >= 0 and b.targets.max() < task.output_size
  scored_or_prefix = np.cumsum(b.inputs[:, ::-1] != task.pad_id, axis=1)[:, ::-1] > 0
  assert not (b.mask & ~scored_or_prefix).any()  # nothing scored after the padding
  assert ((b.inputs == task.pad_id) <= ~b.mask).all()  # PAD is never scored


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_deterministic_for_a_seed(task):
  a, b, c = _sample(task, 3, 48, 3, 7), _sample(task, 3, 48, 3, 7), _sample(task, 4, 48, 3, 7)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("task", TASKS, ids=IDS)
@pytest.mark.parametrize("lo,hi", [(1, 1), (3, 7)])
def test_depth_range_and_solver_agree(task, lo, hi):
  b = _sample(task, 1, 48, lo, hi)
  assert ((b.depth >= lo) & (b.depth <= hi)).all()
  if lo < hi:
    assert len(set(b.depth.tolist())) > 1
  solved = task.solve(b.inputs)
  np.testing.assert_array_equal(solved[b.mask], b.targets[b.mask])
  fixed = task.fixed_len is not None
  if task.name in ("maze", "perm") and not fixed:
    np.testing.assert_array_equal(b.mask.sum(1), b.depth)  # one target per move
  if task.name == "maze" and fixed:
    moves = (b.inputs >= task.move_id) & (b.inputs < task.move_id + 4)
    np.testing.assert_array_equal(moves.sum(1), b.depth)  # the rest STAY
    np.testing.assert_array_equal(b.mask.sum(1), task.fixed_len - task.n_cells - 1)
  if task.name == "perm" and fixed:
    np.testing.assert_array_equal((b.inputs != 0).sum(1), b.depth)  # the rest the identity
    assert b.mask.all()
  if task.name == "frjt":
    np.testing.assert_array_equal(task.depth_of(b.inputs), b.depth)
  if task.name == "last_write":
    np.testing.assert_array_equal((b.mask & (b.inputs < task.n_payloads)).sum(1), b.depth)


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_explicit_depths(task):
  depths = jnp.array([3, 7, 5] * 16)
  b = _sample(task, 0, 48, 3, 7, depths=depths)
  np.testing.assert_array_equal(b.depth, depths)
  np.testing.assert_array_equal(task.solve(b.inputs)[b.mask], b.targets[b.mask])


def test_draw_depths_rejects_bad_range():
  with pytest.raises(ValueError):
    task_lib.draw_depths(jax.random.PRNGKey(0), 2, 0, 3)
  with pytest.raises(ValueError):
    task_lib.draw_depths(jax.random.PRNGKey(0), 2, 4, 3)


def test_registry():
  assert set(tasks.TASKS) == {"frjt", "maze", "perm", "last_write"}
  assert tasks.make("maze", width=3).n_cells == 12
  with pytest.raises(ValueError):
    tasks.make("nope")
