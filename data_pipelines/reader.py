"""Grain readers of a built dataset (docs/DATA_PIPELINE.md).

`LaneBatchIterDataset` (training, truncated BPTT): B lanes each walk one segment
step by step and carry on in the next batch; a lane that finishes its segment
takes the next one from the epoch queue and sets `reset` at its first step. The
epoch queue is `default_rng([seed, epoch]).permutation(n_segments)` restricted to
this reader's shard (segment index mod shard_count; the training loop gives processes
that hold the same batch rows the same shard), so shards are disjoint
and cover the split. The iterator state {epoch, qpos, lanes: [[segment, key
position], ...]} is JSON and restores mid-epoch exactly.

With `max_lane_steps=N` the queue items are pieces instead of whole segments:
piece k of a segment covers key positions [k*N, min((k+1)*N, n_steps)), a
boundary inside a multi-key token moving to the token's start (pieces tile the
token stream), and a lane starting a piece sets `reset`. The queue permutes this
shard's pieces (shard segments in order, then their pieces); lane states gain
the piece's end key position, and the state records `max_lane_steps`.

`random_windows` (evaluation): a `grain.MapDataset` whose item i is one window
from a seeded uniform start, i.i.d. over items, reset at its first step.

Per model step a token starts at a key: the step's frame is the frame shown
before that key and its action is the token id (the key id without tokenizer). A
token is matched over the keys' terminal bytes, ending at a key boundary
(tokenizer.py); a key sequence no token covers raises TokenizerError.
Batches: frames uint8 (B, T, rows, cols, 7) (with `packed=True` the cells
themselves, uint16 (B, T, rows, cols): 2 bytes a cell to move instead of 7, expanded
with codec.CELL_LUT where they are used), actions int32 (B, T), valid bool
(B, T), reset bool (B, T), cursor int16 (B, T, 2). With `vocab_size` V, an action
id >= V raises ValueError where the batch is filled (it would give a NaN loss).
"""

import collections
import os

import grain
import numpy as np

from data_pipelines import codec, sidecar, tfds_builder
from data_pipelines.tokenizer import Tokenizer


class Split:
  """One split of a dataset directory: segment metadata and decoded records."""

  def __init__(self, ds_dir: str, split: str = "train", cache: int = 32):
    self.dir, self.name = ds_dir, split
    self.meta = sidecar.load(ds_dir)
    if split not in self.meta["splits"]:
      hint = (
        "; rebuild with --val-repo NAME (hold out a whole source) or --val-fraction F "
        "(the last F of each repository's commits, e.g. 0.05), or data.val_sources / "
        "data.val_fraction in the experiment config"
        if split == "validation"
        else ""
      )
      have = sorted(self.meta["splits"])
      raise KeyError(f"{ds_dir}: no split {split!r}; have {have}{hint}")
    self.rows, self.cols, self.window = self.meta["rows"], self.meta["cols"], self.meta["window"]
    self.segments = [s for s in self.meta["segments"] if s["split"] == split]
    self.source = tfds_builder.data_source(os.path.join(ds_dir, self.meta["tfds_dir"]), split)
    self._cache: collections.OrderedDict = collections.OrderedDict()
    self.cache_size = cache

  def cells(self, record: int) -> np.ndarray:
    """Decoded cells (L, H, W) uint16 of a record (LRU-cached)."""
    x = self._cache.get(record)
    if x is None:
      x = codec.decode_frames(self.source[record]["frames"], self.window, self.rows, self.cols)
      self._cache[record] = x
      if len(self._cache) > self.cache_size:
        self._cache.popitem(last=False)
    else:
      self._cache.move_to_end(record)
    return x

  def segment_arrays(
    self, i: int, start: int = 0, stop: int | None = None
  ) -> tuple[np.ndarray, np.ndarray]:
    """(keys uint8, cursor (., 2) int16) of steps [start, stop) of segment i."""
    s, L = self.segments[i], self.window
    stop = s["n_steps"] if stop is None else min(stop, s["n_steps"])
    first = s["first_record"]
    recs = [self.source[r] for r in range(first + start // L, first + -(-stop // L))]
    lo = start - start // L * L
    return (
      np.concatenate([r["actions"] for r in recs])[lo : lo + stop - start],
      np.concatenate([r["cursor"] for r in recs])[lo : lo + stop - start],
    )


def _tokenise(split: Split, seg: int, tokenizer: Tokenizer | None) -> tuple:
  """(n_steps, token ids, their key positions, cursor at them) of segment seg."""
  keys, cursor = split.segment_arrays(seg)
  if tokenizer is None:
    ids, starts = keys.astype(np.int32), np.arange(len(keys))
  else:
    ids, starts = tokenizer.encode_all(keys)
    ids, starts = np.array(ids, np.int32), np.array(starts, np.int64)
  return len(keys), ids, starts, cursor[starts]


class _Lane:
  """A lane's segment, tokenised, and its tokens [j0, end) to walk (j: next token)."""

  def __init__(
    self, split: Split, seg: int, tokenizer: Tokenizer | None, data: tuple | None = None
  ):
    self.seg = seg
    self.n, self.ids, self.starts, self.cursor = data or _tokenise(split, seg, tokenizer)
    self.j = self.j0 = 0  # reset where j == j0
    self.end = len(self.ids)

  def key_pos(self, j: int) -> int:
    return int(self.starts[j]) if j < len(self.starts) else self.n

  @property
  def pos(self) -> int:
    return self.key_pos(self.j)

  def token_at(self, pos: int) -> int:
    """Index of the token containing key position pos (len(ids) from n_steps on)."""
    return int(np.searchsorted(self.starts, pos, "right")) - 1 if pos < self.n else len(self.ids)

  def token_starting(self, pos: int) -> int:
    """Index of the token starting at key position pos (len(ids) at n_steps)."""
    j = self.token_at(pos)
    if pos < 0 or self.key_pos(j) != pos:
      raise ValueError(f"lane position {pos} of segment {self.seg} is not a token start")
    return j


class _Batch:
  """Batch arrays being filled; vocab_size: action ids must be below it (None: unchecked)."""

  def __init__(
    self, B: int, T: int, rows: int, cols: int, vocab_size: int | None = None, packed: bool = False
  ):
    self.vocab_size, self.packed = vocab_size, packed
    self.cells = np.zeros((B, T, rows, cols), np.uint16)
    self.actions = np.zeros((B, T), np.int32)
    self.valid = np.zeros((B, T), bool)
    self.reset = np.zeros((B, T), bool)
    self.cursor = np.zeros((B, T, 2), np.int16)

  def fill(self, split: Split, b: int, t: int, lane: _Lane, k: int) -> None:
    """Steps t..t+k of lane b from the lane's next k tokens."""
    j = lane.j
    pos = lane.starts[j : j + k]
    ids = lane.ids[j : j + k]
    if self.vocab_size is not None and k and ids.max() >= self.vocab_size:
      _out_of_vocabulary(split, lane, j, ids, self.vocab_size)
    self.actions[b, t : t + k] = ids
    self.cursor[b, t : t + k] = lane.cursor[j : j + k]
    self.valid[b, t : t + k] = True
    self.reset[b, t] = j == lane.j0
    first = split.segments[lane.seg]["first_record"]
    rec, off = np.divmod(pos, split.window)
    for r in np.unique(rec).tolist():
      m = rec == r
      self.cells[b, t + np.flatnonzero(m)] = split.cells(first + r)[off[m]]

  def arrays(self) -> dict:
    frames = self.cells if self.packed else codec.to_rgb(self.cells)
    return {
      "frames": frames,
      "actions": self.actions,
      "valid": self.valid,
      "reset": self.reset,
      "cursor": self.cursor,
    }


def _out_of_vocabulary(split: Split, lane: _Lane, j: int, ids: np.ndarray, vocab: int):
  i = int(np.argmax(ids >= vocab))
  raise ValueError(
    f"{split.dir} ({split.name}): action id {int(ids[i])} (segment "
    f"{split.segments[lane.seg]['id']}, step {int(lane.starts[j + i])}) is outside the "
    f"model's vocabulary of {vocab} ids (0..{vocab - 1}); it would give a NaN loss. Raise "
    f"model.vocab_size above {int(ids.max())} (to the dataset's action count), or use a "
    f"tokenizer of at most {vocab} tokens"
  )


class LaneReader:
  """The lane state machine (plain Python; wrapped as a grain iterator below).

  max_lane_steps: None walks whole segments; N walks pieces of at most N key steps.
  vocab_size: every action id must be below it, else ValueError (None: unchecked).
  """

  def __init__(
    self,
    ds_dir: str,
    split: str,
    batch_size: int,
    seq_len: int,
    *,
    seed: int = 0,
    tokenizer: Tokenizer | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
    max_lane_steps: int | None = None,
    vocab_size: int | None = None,
    packed: bool = False,
  ):
    if max_lane_steps is not None and max_lane_steps < 1:
      raise ValueError(f"max_lane_steps must be >= 1 or None, got {max_lane_steps}")
    if shard_index is None or shard_count is None:
      import jax

      shard_index, shard_count = jax.process_index(), jax.process_count()
    self.split = Split(ds_dir, split)
    self.split.cache_size = batch_size * (seq_len // self.split.window + 3)  # records in flight
    self.B, self.T, self.seed, self.tokenizer = batch_size, seq_len, seed, tokenizer
    self.vocab_size, self.packed = vocab_size, packed
    self.shard = [i for i in range(len(self.split.segments)) if i % shard_count == shard_index]
    if not self.shard:
      raise ValueError(
        f"{ds_dir}/{split}: {len(self.split.segments)} segments cannot be "
        f"sharded over {shard_count} processes; build more segments "
        "(lower --max-segment-steps) or use fewer processes"
      )
    self.max_lane_steps = max_lane_steps
    if max_lane_steps is None:
      self.items: list = self.shard
    else:  # (segment, piece index), by segment then piece
      self.items = [
        (i, k)
        for i in self.shard
        for k in range(-(-self.split.segments[i]["n_steps"] // max_lane_steps))
      ]
    self.epoch, self.qpos = 0, 0
    self.lanes: list[_Lane | None] = [None] * batch_size
    self._queue_epoch, self._queue = None, []
    self._tokenised: collections.OrderedDict = collections.OrderedDict()

  def queue(self, epoch: int) -> list:
    """Epoch order of the items: segment indices, or (segment, piece) with max_lane_steps."""
    if self._queue_epoch != epoch:
      order = np.random.default_rng([self.seed, epoch]).permutation(len(self.items))
      self._queue_epoch, self._queue = epoch, [self.items[i] for i in order]
    return self._queue

  def _next_item(self):
    q = self.queue(self.epoch)
    item = q[self.qpos]
    self.qpos += 1
    if self.qpos == len(q):
      self.epoch, self.qpos = self.epoch + 1, 0
    return item

  def _lane(self, seg: int) -> _Lane:
    if self.max_lane_steps is None:
      return _Lane(self.split, seg, self.tokenizer)
    data = self._tokenised.get(seg)  # pieces of one segment share its tokenisation
    if data is None:
      data = self._tokenised[seg] = _tokenise(self.split, seg, self.tokenizer)
      if len(self._tokenised) > self.B + 1:
        self._tokenised.popitem(last=False)
    else:
      self._tokenised.move_to_end(seg)
    return _Lane(self.split, seg, self.tokenizer, data)

  def _new_lane(self) -> _Lane:
    item = self._next_item()
    if self.max_lane_steps is None:
      return self._lane(item)
    (seg, k), N = item, self.max_lane_steps
    lane = self._lane(seg)
    lane.j = lane.j0 = lane.token_at(k * N)
    lane.end = lane.token_at((k + 1) * N)  # empty if one token spans the piece
    return lane

  def next_batch(self) -> dict:
    out = _Batch(self.B, self.T, self.split.rows, self.split.cols, self.vocab_size, self.packed)
    for b in range(self.B):
      t = 0
      while t < self.T:
        lane = self.lanes[b]
        if lane is None or lane.j >= lane.end:
          lane = self.lanes[b] = self._new_lane()
          continue  # an empty piece is skipped
        k = min(self.T - t, lane.end - lane.j)
        out.fill(self.split, b, t, lane, k)
        lane.j += k
        t += k
    return out.arrays()

  def get_state(self) -> dict:
    if self.max_lane_steps is None:
      lanes = [[-1, 0] if lane is None else [int(lane.seg), lane.pos] for lane in self.lanes]
      return {"epoch": self.epoch, "qpos": self.qpos, "lanes": lanes}
    lanes = [
      [-1, 0, 0] if lane is None else [int(lane.seg), lane.pos, lane.key_pos(lane.end)]
      for lane in self.lanes
    ]
    return {
      "epoch": self.epoch,
      "qpos": self.qpos,
      "lanes": lanes,
      "max_lane_steps": self.max_lane_steps,
    }

  def set_state(self, state: dict) -> None:
    if len(state["lanes"]) != self.B:
      raise ValueError(f"state has {len(state['lanes'])} lanes, reader has {self.B}")
    if state.get("max_lane_steps") != self.max_lane_steps:
      raise ValueError(
        f"state has max_lane_steps {state.get('max_lane_steps')}, reader has {self.max_lane_steps}"
      )
    self.epoch, self.qpos = int(state["epoch"]), int(state["qpos"])
    self.lanes = []
    for seg, pos, *end in state["lanes"]:
      lane = None
      if seg >= 0:
        lane = self._lane(int(seg))
        lane.j = lane.token_starting(int(pos))
        if self.max_lane_steps is not None:
          # A saved lane has taken a step of its piece: no reset before its end.
          lane.end, lane.j0 = lane.token_starting(int(end[0])), -1
      self.lanes.append(lane)


class LaneBatchIterator(grain.DatasetIterator):
  def __init__(self, reader: LaneReader):
    super().__init__()
    self._reader = reader

  def __next__(self) -> dict:
    return self._reader.next_batch()

  def get_state(self) -> dict:
    return self._reader.get_state()

  def set_state(self, state: dict) -> None:
    self._reader.set_state(state)


class LaneBatchIterDataset(grain.IterDataset):
  """Grain dataset of lane batches; see LaneReader for the arguments."""

  def __init__(
    self,
    ds_dir: str,
    split: str,
    batch_size: int,
    seq_len: int,
    *,
    max_lane_steps: int | None = None,
    **kwargs,
  ):
    super().__init__()
    self._args = (ds_dir, split, batch_size, seq_len)
    self._kwargs = {**kwargs, "max_lane_steps": max_lane_steps}

  def __iter__(self) -> LaneBatchIterator:
    return LaneBatchIterator(LaneReader(*self._args, **self._kwargs))


class _RandomWindows:
  """Random-access source: item i is a window from a seeded uniform start."""

  def __init__(
    self, ds_dir, split, seq_len, seed, tokenizer, length, vocab_size=None, packed=False
  ):
    self.split = Split(ds_dir, split)
    self.T, self.seed, self.tokenizer, self.length = seq_len, seed, tokenizer, length
    self.vocab_size, self.packed = vocab_size, packed
    n = np.array([s["n_steps"] for s in self.split.segments], np.float64)
    self.p = n / n.sum()

  def __len__(self) -> int:
    return self.length

  def __getitem__(self, i: int) -> dict:
    rng = np.random.default_rng([self.seed, i])
    seg = int(rng.choice(len(self.p), p=self.p))
    n_steps = self.split.segments[seg]["n_steps"]
    start = int(rng.integers(0, max(1, n_steps - self.T) + 1))
    start = min(start, n_steps - 1)
    span = self.T * (1 if self.tokenizer is None else self.tokenizer.max_keys)
    keys, cursor = self.split.segment_arrays(seg, start, start + span)
    ids, pos, p = [], [], 0
    while p < len(keys) and len(ids) < self.T:
      t, n = (int(keys[p]), 1) if self.tokenizer is None else self.tokenizer.encode(keys, p)
      ids.append(t)
      pos.append(p)
      p += n
    lane = _Lane.__new__(_Lane)
    lane.seg, lane.n, lane.j = seg, n_steps, 0
    lane.j0 = lane.end = 0
    lane.ids, lane.starts = np.array(ids, np.int32), np.array(pos, np.int64) + start
    lane.cursor = cursor[lane.starts - start]
    out = _Batch(1, self.T, self.split.rows, self.split.cols, self.vocab_size, self.packed)
    out.fill(self.split, 0, 0, lane, len(ids))
    out.reset[0, 0] = True
    return {k: v[0] for k, v in out.arrays().items()}


def random_windows(
  ds_dir: str,
  split: str,
  seq_len: int,
  *,
  seed: int = 0,
  tokenizer: Tokenizer | None = None,
  length: int = 1 << 20,
  vocab_size: int | None = None,
  packed: bool = False,
) -> grain.MapDataset:
  """Evaluation windows (T steps each); batch with `.batch(B)`. vocab_size, packed: as
  LaneReader's."""
  return grain.MapDataset.source(
    _RandomWindows(ds_dir, split, seq_len, seed, tokenizer, length, vocab_size, packed)
  )
