"""S_n composition: the Cayley table, the serial solver against permutation matrices."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfam_jax.research.tasks import Permutations
from rcfam_jax.research.tasks.perm import cayley_table, elements


def matrix(p):
  """Permutation matrix M with M @ e_i = e_{p[i]}."""
  m = np.zeros((len(p), len(p)), np.int64)
  m[list(p), range(len(p))] = 1
  return m


@pytest.mark.parametrize("n", [2, 3, 4])
def test_cayley_table_is_a_group(n):
  table = cayley_table(n)
  order = len(elements(n))
  assert elements(n)[0] == tuple(range(n))  # id 0 is the identity
  np.testing.assert_array_equal(table[0], np.arange(order))
  for row in table:  # Latin square: g -> g o s bijective
    assert sorted(row) == list(range(order))
  assert len({tuple(r) for r in table.T}) == order


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4), st.lists(st.integers(0, 23), max_size=12))
def test_solver_matches_matrix_products(n, raw):
  task = Permutations(n=n)
  perms = elements(n)
  tokens = [t % task.order for t in raw]
  row = np.array(tokens + [task.pad_id], np.int64)
  got = task.solve(row[None])[0]
  acc = np.eye(n, dtype=np.int64)
  index = {tuple(np.argmax(matrix(p), axis=0)): i for i, p in enumerate(perms)}
  for t, tok in enumerate(tokens):
    acc = matrix(perms[tok]) @ acc  # apply s first, then g
    assert got[t] == index[tuple(np.argmax(acc, axis=0))]
  assert got[len(tokens)] == -1


def test_non_abelian_and_never_synchronises():
  task = Permutations(n=3)
  table = cayley_table(3)
  assert (table != table.T).any()  # order of tokens matters
  b = jax.tree.map(
    np.asarray, jax.jit(lambda k: task.sample_batch(k, 64, 16, 16))(jax.random.PRNGKey(0))
  )
  # two different start states stay different under the same tokens (a bijection per step)
  s1, s2 = np.zeros(64, np.int64), np.ones(64, np.int64)
  for t in range(16):
    s1, s2 = table[s1, b.inputs[:, t]], table[s2, b.inputs[:, t]]
    assert (s1 != s2).all()
  np.testing.assert_array_equal(s1, b.targets[:, -1])
  assert len(set(b.targets[:, -1].tolist())) == task.order


def test_rejects_bad_n():
  with pytest.raises(ValueError):
    Permutations(n=6)
