"""Asynchronous host-to-device prefetch: read and transfer the next batches while a step runs.

  with Prefetcher(reader.next_batch, put=to_device, depth=2, state_fn=reader.get_state) as it:
    for _ in range(n):
      batch = next(it)            # already on the device
      ...
      save(..., data_state=it.get_state())   # the reader state right after `batch`

A background thread calls `next_fn()` and `put(...)` (default `jax.device_put`) and keeps up to
`depth` batches ready, so the host reader and the transfer overlap the device step. The reader is
used only from that thread once the prefetcher starts. Because the thread reads ahead, the
reader's own state is ahead of what was consumed: `state_fn` is called after each batch is read
and `get_state()` returns the state recorded with the last batch handed out, the one to save
in a checkpoint. Exceptions in the thread are re-raised by `next()`.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import jax

_END = object()


class Prefetcher:
  """Iterator over `put(next_fn())`, produced `depth` batches ahead on a daemon thread."""

  def __init__(self, next_fn: Callable[[], Any], *, put: Callable[[Any], Any] = jax.device_put,
               depth: int = 2, state_fn: Callable[[], Any] | None = None,
               limit: int | None = None):
    if depth < 1:
      raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    self._next_fn, self._put, self._state_fn, self._limit = next_fn, put, state_fn, limit
    self._queue: queue.Queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    self._state = state_fn() if state_fn is not None else None
    self._done = False
    self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
    self._thread.start()

  def _offer(self, item) -> bool:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _run(self):
    n = 0
    try:
      while not self._stop.is_set() and (self._limit is None or n < self._limit):
        host = self._next_fn()
        state = self._state_fn() if self._state_fn is not None else None
        if not self._offer((self._put(host), state)):
          return
        n += 1
      self._offer(_END)
    except BaseException as e:  # handed to the consumer
      self._offer(e)

  def __iter__(self):
    return self

  def __next__(self):
    if self._done:
      raise StopIteration
    item = self._queue.get()
    if item is _END:
      self._done = True
      raise StopIteration
    if isinstance(item, BaseException):
      self._done = True
      self.close()
      raise item
    batch, self._state = item
    return batch

  def get_state(self):
    """`state_fn()` as recorded right after the last batch returned by `next()` was read."""
    return self._state

  def close(self):
    """Stops the thread (a batch being read finishes first); idempotent."""
    self._done = True
    self._stop.set()
    while True:  # unblock a producer waiting on a full queue
      try:
        self._queue.get_nowait()
      except queue.Empty:
        break
    if self._thread is not threading.current_thread():
      self._thread.join(timeout=60)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
    return False
