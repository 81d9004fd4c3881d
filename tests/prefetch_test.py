"""Asynchronous host-to-device prefetch: order, state bookkeeping, errors, shutdown."""
import time

import jax
import numpy as np
import pytest

from rcfam_jax.prefetch import Prefetcher


class CountingReader:
  def __init__(self, fail_at=None, delay=0.0):
    self.i, self.fail_at, self.delay = 0, fail_at, delay

  def next_batch(self):
    if self.i == self.fail_at:
      raise RuntimeError("reader broke")
    time.sleep(self.delay)
    self.i += 1
    return {"x": np.full((2, 3), self.i, np.int32)}

  def get_state(self):
    return {"i": self.i}


def test_batches_in_order_on_device_with_consumed_state():
  r = CountingReader()
  with Prefetcher(r.next_batch, depth=3, state_fn=r.get_state, limit=5) as it:
    assert it.get_state() == {"i": 0}
    seen = []
    for k, b in enumerate(it, start=1):
      assert isinstance(b["x"], jax.Array)
      seen.append(int(b["x"][0, 0]))
      assert it.get_state() == {"i": k}  # the state after this batch, not the read-ahead one
    assert seen == [1, 2, 3, 4, 5]


def test_reads_ahead_while_consumer_works():
  r = CountingReader(delay=0.02)
  with Prefetcher(r.next_batch, put=lambda b: b, depth=2) as it:
    next(it)
    time.sleep(0.2)
    assert r.i >= 3  # one consumed + `depth` ready (+ one in flight)


def test_reader_error_is_raised_by_next():
  r = CountingReader(fail_at=2)
  it = Prefetcher(r.next_batch, put=lambda b: b)
  next(it)
  next(it)
  with pytest.raises(RuntimeError, match="reader broke"):
    next(it)
  with pytest.raises(StopIteration):
    next(it)


def test_close_stops_a_blocked_producer():
  r = CountingReader()
  it = Prefetcher(r.next_batch, put=lambda b: b, depth=1)
  time.sleep(0.05)
  it.close()
  assert not it._thread.is_alive()
  with pytest.raises(ValueError):
    Prefetcher(r.next_batch, depth=0)
