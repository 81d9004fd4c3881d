"""Training data: build (if needed) the text-video dataset an experiment names, and read it.

  python -m rcfam_jax.data --config experiments/demo.py     # what `make data EXP=demo` runs

The dataset is built by `data_pipelines` from Git sources ('self' = this repository's history,
local clones or URLs) into `DataConfig.dir`, written to a temporary directory and renamed when
complete. An optional action tokenizer (`tokenizer_size` > 0) is learned from the train split
and saved beside the data in the author's `# FBAM_TOK v1.0` format.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

import numpy as np

from data_pipelines import build as build_lib
from data_pipelines import keys as keys_lib
from data_pipelines import reader as reader_lib
from data_pipelines.tokenizer import Tokenizer
from rcfam_jax.config import DataConfig


@dataclasses.dataclass(frozen=True)
class Dataset:
  dir: str
  tokenizer: Tokenizer | None
  n_actions: int
  splits: tuple[str, ...]


def _sidecar(d: str) -> str:
  return os.path.join(d, "segments.json")


def prepare(cfg: DataConfig) -> Dataset:
  """Builds the dataset and tokenizer when missing; checks the frame size matches."""
  if not os.path.exists(_sidecar(cfg.dir)):
    if not cfg.build:
      raise FileNotFoundError(
          f"no dataset at {cfg.dir!r}: build it with `make data EXP=<experiment>` or set "
          "data.build=True")
    logging.info("building dataset %s from %s", cfg.dir, list(cfg.sources))
    summary = build_lib.build_from_sources(
        list(cfg.sources), cfg.dir, cfg.rows, cfg.cols, window=cfg.window,
        val_sources=tuple(cfg.val_sources), val_fraction=cfg.val_fraction,
        cache_dir=cfg.cache_dir, max_keys_per_commit=cfg.max_keys_per_commit,
        max_segment_steps=cfg.max_segment_steps)
    logging.info("dataset built: %s", json.dumps(summary))
  with open(_sidecar(cfg.dir)) as f:
    meta = json.load(f)
  if (meta["rows"], meta["cols"]) != (cfg.rows, cfg.cols):
    raise ValueError(
        f"dataset {cfg.dir!r} has {meta['rows']}x{meta['cols']} frames but the experiment asks "
        f"for {cfg.rows}x{cfg.cols}: point data.dir at another directory or delete this one")
  tok = _tokenizer(cfg) if cfg.tokenizer_size else None
  n_actions = len(tok) if tok else keys_lib.NUM_KEYS
  return Dataset(cfg.dir, tok, n_actions, tuple(sorted(meta["splits"])))


def _tokenizer(cfg: DataConfig) -> Tokenizer:
  path = os.path.join(cfg.dir, f"tokenizer_{cfg.tokenizer_size}.txt")
  if not os.path.exists(path):
    split = reader_lib.Split(cfg.dir, "train")
    streams = [split.segment_arrays(i)[0] for i in range(len(split.segments))]
    tmp = f"{path}.tmp{os.getpid()}"
    Tokenizer.learn(streams, cfg.tokenizer_size).save(tmp)
    os.replace(tmp, path)
  return Tokenizer.load(path)


def train_reader(ds: Dataset, batch: int, seq_len: int, seed: int, *,
                 max_lane_steps: int | None = None, shard_index: int | None = None,
                 shard_count: int | None = None):
  """Lane reader for truncated BPTT: `next_batch()`, JSON `get_state()` / `set_state()`.

  max_lane_steps: walk segments in pieces of at most this many steps (each starting with a
  reset), so that a corpus of few, long segments still gives every lane different data.
  """
  return reader_lib.LaneReader(ds.dir, "train", batch, seq_len, seed=seed, tokenizer=ds.tokenizer,
                               max_lane_steps=max_lane_steps, shard_index=shard_index,
                               shard_count=shard_count)


def eval_batches(ds: Dataset, split: str, batch: int, seq_len: int, n_batches: int,
                 seed: int = 1234) -> list[dict[str, Any]]:
  """A fixed list of evaluation batches (random windows, each starting from a reset)."""
  if split not in ds.splits:
    raise ValueError(
        f"dataset {ds.dir!r} has no {split!r} split (has {list(ds.splits)}): hold out data with "
        "data.val_sources (whole repositories) or data.val_fraction (last commits)")
  src = reader_lib.random_windows(ds.dir, split, seq_len, seed=seed, tokenizer=ds.tokenizer)
  items = [src[i] for i in range(batch * n_batches)]
  return [{k: np.stack([it[k] for it in items[b * batch:(b + 1) * batch]]) for k in items[0]}
          for b in range(n_batches)]


def main(argv=None) -> int:
  import argparse
  import importlib.util

  from rcfam_jax.config import from_dict
  p = argparse.ArgumentParser(description="Build the dataset an experiment config names.")
  p.add_argument("--config", required=True, help="experiments/NAME.py")
  args = p.parse_args(argv)
  spec = importlib.util.spec_from_file_location("exp", args.config)
  if spec is None or not os.path.exists(args.config):
    raise SystemExit(f"no experiment file {args.config!r}; see experiments/")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  data = mod.get_config().data.to_dict()
  ds = prepare(from_dict(DataConfig, data))
  print(json.dumps({"dir": ds.dir, "splits": ds.splits, "n_actions": ds.n_actions}))
  return 0


if __name__ == "__main__":
  logging.basicConfig(level=logging.INFO, stream=sys.stderr)
  raise SystemExit(main())
