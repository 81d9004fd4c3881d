"""FRJT and Last-Write: the serial solvers agree with brute force on arbitrary streams."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rcfam_jax.research.tasks import FRJT, LastWrite


def frjt_brute_force(task: FRJT, row):
  """Executed cells = the forward closure of cell 0 under i -> i + offset_i (fixed point)."""
  n = int(np.argmax(row == task.pad_id)) if (row == task.pad_id).any() else len(row)
  offset, payload = row[:n] // task.n_payloads + 1, row[:n] % task.n_payloads
  reach = np.arange(n) == 0
  for _ in range(n):  # propagate reachability until nothing changes
    nxt = np.arange(n)[reach] + offset[reach]
    new = reach.copy()
    new[nxt[nxt < n]] = True
    if (new == reach).all():
      break
    reach = new
  out = np.full(len(row), -1)
  for t in range(n):
    last = np.flatnonzero(reach[: t + 1]).max()
    out[t] = payload[last] if task.target == "payload" else last + offset[last] - t - 1
  return out, int(reach.sum())


streams = st.lists(st.integers(0, 3 * 4), min_size=0, max_size=40)  # 3 jumps x 4 payloads + PAD


@settings(max_examples=150, deadline=None)
@given(streams, st.sampled_from(["payload", "pointer"]))
def test_frjt_solver_matches_brute_force(tokens, target):
  task = FRJT(max_jump=3, n_payloads=4, target=target)
  row = np.array(tokens, np.int64)
  want, depth = frjt_brute_force(task, row)
  np.testing.assert_array_equal(task.solve(row[None])[0], want)
  # depth counts executed cells inside the unpadded prefix
  assert task.depth_of(row[None])[0] == depth


# The fixed-length protocol's BLANK (13 = pad_id + 1): no cell, the state stays as it is.
blank_streams = st.lists(st.integers(0, 3 * 4 + 1), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(blank_streams, st.sampled_from(["payload", "pointer"]))
def test_frjt_solver_with_blanks_matches_brute_force(tokens, target):
  """Blanks: the brute force on the row without them, each blank repeating the last target."""
  task = FRJT(max_jump=3, n_payloads=4, target=target, fixed_len=40)
  row = np.array(tokens, np.int64)
  cells = row != task.blank_id
  want_cells, depth = frjt_brute_force(task, row[cells])
  want, last = np.full(len(row), -1), -1
  for t, k in enumerate(np.cumsum(cells) - 1):
    if task.pad_id in row[: t + 1]:
      break
    last = want_cells[k] if k >= 0 else -1
    want[t] = last
  np.testing.assert_array_equal(task.solve(row[None])[0], want)
  assert task.depth_of(row[None])[0] == depth


def test_frjt_worked_example():
  task = FRJT(max_jump=4, n_payloads=8)
  enc = lambda o, v: task.encode(o, v)
  # cells: 0:(2,a) 1:(1,b) 2:(3,c) 3:(1,d) 4:(4,e) 5:(1,f) -> executed 0, 2, 5
  row = np.array([[enc(2, 1), enc(1, 2), enc(3, 3), enc(1, 4), enc(4, 5), enc(1, 6), task.pad_id]])
  np.testing.assert_array_equal(task.solve(row)[0], [1, 1, 3, 3, 3, 6, -1])
  assert task.depth_of(row)[0] == 3
  ptr = FRJT(max_jump=4, n_payloads=8, target="pointer")
  np.testing.assert_array_equal(ptr.solve(row)[0], [1, 0, 2, 1, 0, 0, -1])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2 * 5), min_size=0, max_size=30))
def test_last_write_solver_matches_brute_force(tokens):
  task = LastWrite(max_gap=3, n_payloads=5)
  row = np.array(tokens, np.int64)
  got = task.solve(row[None])[0]
  for t in range(len(row)):
    if task.pad_id in row[: t + 1]:
      assert got[t] == -1
      continue
    writes = [v for v in row[: t + 1] if v < task.n_payloads]
    assert got[t] == (writes[-1] if writes else -1)
