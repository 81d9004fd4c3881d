"""Training data: build (if needed) the text-video dataset an experiment names, and read it.

  python -m rcfam_jax.data --config experiments/demo.py[:ARG] [--config.data.dir=...]
                                                           # what `make data EXP=demo` runs

The dataset is built by `data_pipelines` from Git sources ('self' = this repository's history,
local clones or URLs) into `DataConfig.dir`, written to a temporary directory and renamed when
complete. An optional action tokenizer (`tokenizer_size` > 0) is learned from the train split
and saved beside the data in the author's `# FBAM_TOK v1.0` format: its tokens are the terminal
bytes of key sequences (keys.ACTION_ENCODING, docs/FIDELITY.md). A dataset or tokenizer
made with an older action encoding is refused ("rebuild: action encoding changed").

A dataset is reused only if it was built as the config asks: the fingerprint in its
`segments.json` (sources, frame size, window, validation split, compile caps, builder version)
must match `DataConfig`, else `sidecar.DatasetError` names the fields and the fix. A source
whose HEAD moved since the build is an error with `data.build=True` (the data no longer
matches it) and a warning with `data.build=False` (use the data as built: resuming, evaluating).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

import grain
import numpy as np

from data_pipelines import build as build_lib
from data_pipelines import keys as keys_lib
from data_pipelines import reader as reader_lib
from data_pipelines import sidecar, vocab
from data_pipelines.git_reader import GitSourceError
from data_pipelines.tokenizer import Tokenizer, TokenizerError
from rcfam_jax.config import DataConfig

log = logging.getLogger(__name__)
_FRAME = ("rows", "cols")  # the model's frame size: ModelConfig is its one source
_FIELDS = ("window", "val_fraction", "max_keys_per_commit", "max_segment_steps")
_REBUILD = "python -m rcfam_jax.data --config experiments/<EXP>.py --overwrite"


@dataclasses.dataclass(frozen=True)
class Dataset:
  dir: str
  tokenizer: Tokenizer | None
  n_actions: int
  splits: tuple[str, ...]


def _sidecar(d: str) -> str:
  return os.path.join(d, "segments.json")


def prepare(cfg: DataConfig, frame: tuple[int, int], *, overwrite: bool = False) -> Dataset:
  """Builds the dataset and tokenizer when missing (or rebuilds with `overwrite`), rendered at
  `frame` = (model.rows, model.cols); refuses a dataset built otherwise than `cfg` and `frame`
  ask (sidecar.DatasetError naming the fields and the fix)."""
  if overwrite or not os.path.exists(_sidecar(cfg.dir)):
    if not cfg.build and not overwrite:
      raise FileNotFoundError(
        f"no dataset at {cfg.dir!r}: build it with `make data EXP=<experiment>` or set "
        "data.build=True"
      )
    logging.info("building dataset %s from %s", cfg.dir, list(cfg.sources))
    summary = build_lib.build_from_sources(
      list(cfg.sources),
      cfg.dir,
      *frame,
      window=cfg.window,
      val_sources=tuple(cfg.val_sources),
      val_fraction=cfg.val_fraction,
      cache_dir=cfg.cache_dir,
      max_keys_per_commit=cfg.max_keys_per_commit,
      max_segment_steps=cfg.max_segment_steps,
      overwrite=overwrite,
    )
    logging.info("dataset built: %s", json.dumps(summary))
  meta = sidecar.load(cfg.dir)
  check_fingerprint(cfg, frame, meta)
  tok = _tokenizer(cfg) if cfg.tokenizer_size or cfg.tokenizer_file else None
  n_actions = len(tok) if tok else keys_lib.NUM_KEYS
  return Dataset(cfg.dir, tok, n_actions, tuple(sorted(meta["splits"])))


def open_built(d: str, *, tokenizer_size: int = 0) -> Dataset:
  """A built dataset as it is, with no config to check it against (tools that take any dataset,
  such as the benchmark's feed); training and evaluation use `prepare`."""
  meta = sidecar.load(d)
  cfg = DataConfig(dir=d, build=False, tokenizer_size=tokenizer_size)
  tok = _tokenizer(cfg) if tokenizer_size else None
  return Dataset(d, tok, len(tok) if tok else keys_lib.NUM_KEYS, tuple(sorted(meta["splits"])))


def _field(k: str) -> str:
  return f"model.{k}" if k in _FRAME else f"data.{k}"


def check_fingerprint(cfg: DataConfig, frame: tuple[int, int], meta: dict) -> None:
  """Raises sidecar.DatasetError unless the dataset `meta` describes was built as `cfg` and
  `frame` ask; a moved source HEAD is an error only with cfg.build (else a warning)."""
  fp = sidecar.fingerprint(meta, _sidecar(cfg.dir))
  want = {
    "builder_version": sidecar.BUILDER_VERSION,
    "sources": list(cfg.sources),
    "val_sources": list(cfg.val_sources),
    **dict(zip(_FRAME, frame)),
    **{k: getattr(cfg, k) for k in _FIELDS},
  }
  diffs = sidecar.differences(fp, want, cfg.cache_dir)
  if diffs:
    match = ", ".join(f"{_field(k)}={a!r}" for k, a, _ in diffs if k != "builder_version")
    said = "; ".join(f"{_field(k)}: dataset {a!r}, asked {b!r}" for k, a, b in diffs)
    raise sidecar.DatasetError(
      f"dataset {cfg.dir!r} was built otherwise than the config asks: {said}. Point data.dir "
      f"at another directory (built on first use), or rebuild this one: `{_REBUILD}`"
      + (f"; or set {match} to use it as built" if match else "")
    )
  moved, unchecked = sidecar.moved_heads(fp, cfg.cache_dir)
  for line in unchecked:
    log.warning("dataset %s: cannot check %s", cfg.dir, line)
  if moved:
    msg = f"dataset {cfg.dir!r}: {'; '.join(moved)}: the data no longer matches its sources"
    if cfg.build:
      raise sidecar.DatasetError(
        f"{msg}. Rebuild it: `{_REBUILD}` (or delete the directory: it is rebuilt on first "
        "use); or, to use the data as built (resuming a run, evaluating), set "
        "data.build=False (--config.data.build=False)"
      )
    log.warning("%s; using it as built (data.build=False)", msg)


def _given_tokenizer(path: str) -> Tokenizer:
  """A vocabulary file used as is (e.g. the author's), with the keys it has no token for
  added (Tokenizer.with_keys), so that every key of our data is covered."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"data.tokenizer_file={path!r}: no such file")
  tok = Tokenizer.load(path)
  missing = tok.missing_keys()
  if missing:
    log.warning(
      "%s: adding %d keys it has no token for: %s",
      path,
      len(missing),
      [keys_lib.key_name(k) for k in missing],
    )
    tok = tok.with_keys()
  return tok


def _tokenizer(cfg: DataConfig) -> Tokenizer:
  if cfg.tokenizer_file:
    if cfg.tokenizer_size:
      raise ValueError(
        "data.tokenizer_file and data.tokenizer_size both set: a given vocabulary "
        "or a learned one; set tokenizer_size=0 to use the file"
      )
    return _given_tokenizer(cfg.tokenizer_file)
  path = os.path.join(cfg.dir, f"tokenizer_{cfg.tokenizer_size}.txt")
  if not os.path.exists(path):
    tmp = f"{path}.tmp{os.getpid()}"
    Tokenizer.learn(vocab.key_streams(cfg.dir), cfg.tokenizer_size).save(tmp)
    os.replace(tmp, path)
  tok = Tokenizer.load(path)
  if len(tok) > cfg.tokenizer_size:
    raise sidecar.DatasetError(
      f"{path}: holds {len(tok)} tokens, more than the {cfg.tokenizer_size} its name says: "
      "not this dataset's tokenizer; delete it and it is learned again from the train split"
    )
  return tok


def train_reader(
  ds: Dataset,
  batch: int,
  seq_len: int,
  seed: int,
  *,
  vocab_size: int | None = None,
  max_lane_steps: int | None = None,
  shard_index: int | None = None,
  shard_count: int | None = None,
  packed: bool = False,
):
  """Lane reader for truncated BPTT: `next_batch()`, JSON `get_state()` / `set_state()`.

  vocab_size: the model's (ModelConfig.vocab_size); a batch holding an action id >= it raises
    ValueError naming the id (None: unchecked).
  max_lane_steps: walk segments in pieces of at most this many steps (each starting with a
  reset), so that a corpus of few, long segments still gives every lane different data.
  packed: frames as uint16 cells (B, T, rows, cols), expanded on the device by the model.
  """
  return reader_lib.LaneReader(
    ds.dir,
    "train",
    batch,
    seq_len,
    seed=seed,
    tokenizer=ds.tokenizer,
    max_lane_steps=max_lane_steps,
    shard_index=shard_index,
    shard_count=shard_count,
    vocab_size=vocab_size,
    packed=packed,
  )


def train_dataset(
  ds: Dataset,
  batch: int,
  seq_len: int,
  seed: int,
  *,
  put=None,
  host_buffer: int = 2,
  device_buffer: int = 2,
  **reader_kwargs,
):
  """The training batches as a grain pipeline: the lane reader (packed cells; `train_reader`'s
  arguments) read `host_buffer` batches ahead on a thread, then `put` (host batch -> device
  batch) `device_buffer` ahead on another, so reading and the transfer overlap the step.

  Iterating gives device batches; the iterator's `get_state()` / `set_state()` are those of the
  reader right after the last batch handed out (grain accounts for the read-ahead).
  """
  base = reader_lib.LaneBatchIterDataset(
    ds.dir, "train", batch, seq_len, seed=seed, tokenizer=ds.tokenizer, packed=True, **reader_kwargs
  )
  pipe = grain.experimental.ThreadPrefetchIterDataset(base, prefetch_buffer_size=host_buffer)
  if put is not None:
    pipe = grain.experimental.ThreadPrefetchIterDataset(
      pipe.map(put), prefetch_buffer_size=device_buffer
    )
  return pipe


def eval_batches(
  ds: Dataset,
  split: str,
  batch: int,
  seq_len: int,
  n_batches: int,
  seed: int = 1234,
  *,
  vocab_size: int | None = None,
  packed: bool = False,
) -> list[dict[str, Any]]:
  """A fixed list of evaluation batches (random windows, each starting from a reset);
  vocab_size and packed as in train_reader."""
  if split not in ds.splits:
    raise ValueError(
      f"dataset {ds.dir!r} has no {split!r} split (has {list(ds.splits)}): hold out data with "
      "data.val_sources (whole repositories) or data.val_fraction (last commits)"
    )
  src = reader_lib.random_windows(
    ds.dir, split, seq_len, seed=seed, tokenizer=ds.tokenizer, vocab_size=vocab_size, packed=packed
  )
  items = [src[i] for i in range(batch * n_batches)]
  return [
    {k: np.stack([it[k] for it in items[b * batch : (b + 1) * batch]]) for k in items[0]}
    for b in range(n_batches)
  ]


def main(argv=None) -> int:
  import argparse

  from rcfam_jax import experiment

  p = argparse.ArgumentParser(
    prog="python -m rcfam_jax.data",
    description="Build the dataset an experiment config names.",
    epilog="Further --config.section.field=value arguments override the config, as for "
    "rcfam_jax.main.",
  )
  p.add_argument("--config", required=True, help="experiments/NAME.py[:ARG]")
  p.add_argument("--overwrite", action="store_true", help="rebuild the dataset if it exists")
  args, overrides = p.parse_known_args(argv)
  try:
    exp = experiment.parse_config(experiment.load(args.config, overrides))
  except (experiment.ExperimentError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    ds = prepare(exp.data, (exp.model.rows, exp.model.cols), overwrite=args.overwrite)
  except (build_lib.BuildError, sidecar.DatasetError, GitSourceError, TokenizerError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({"dir": ds.dir, "splits": ds.splits, "n_actions": ds.n_actions}))
  return 0


if __name__ == "__main__":
  logging.basicConfig(level=logging.INFO, stream=sys.stderr)
  raise SystemExit(main())
