"""A repository's first-parent history compiled into segments of keys.

Segments and splits: docs/DATA_PIPELINE.md §3 and §5.

A segment starts from a fresh editor holding a known tree (`start_files`, the
filtered tree after `start_commit`; empty for the first), with BOS (reset).
Commits over `max_keys_per_commit` keys or `max_commit_bytes` are not typed:
they are teleported (the tree jumps to the commit) and a new segment starts.
Segments are also cut at the first commit boundary past `max_segment_steps`.
With `val_fraction` F > 0, the last ceil(F * n) of the n first-parent commits
(at least 1, at most n - 1) are held out: a new segment (reason 'val_holdout')
starts from the tree of the first held-out commit's parent, and it and every
later segment of the repository go to the 'validation' split.
"""

import collections
import dataclasses
import logging
import math

import numpy as np

from data_pipelines import keys as K
from data_pipelines import render
from data_pipelines.compiler import CapExceeded, CompileError, Compiler
from data_pipelines.git_reader import FilterConfig, GitReader, git

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EpisodeConfig:
  rows: int = 24
  cols: int = 80
  max_keys_per_commit: int = 100_000
  max_segment_steps: int = 1 << 16
  filter: FilterConfig = FilterConfig()
  val_fraction: float = 0.0  # temporal hold-out: the last ceil(F * n) commits -> 'validation'


@dataclasses.dataclass
class Segment:
  repo: str  # source name
  index: int  # segment number within the repository
  reason: str  # 'start', 'teleport', 'length' or 'val_holdout'
  start_commit: str | None  # editor starts with the filtered tree after this commit
  start_files: dict[str, str]
  keys: np.ndarray  # (N,) uint8 key ids, keys[0] == BOS
  commit_index: np.ndarray  # (N,) int32 first-parent index of the commit being typed
  commits: list[str]  # shas typed in this segment, in order
  teleported: str | None = None  # the commit that was jumped over to start this segment
  split: str = "train"  # 'validation' from the temporal hold-out on


@dataclasses.dataclass
class Episode:
  repo: str
  path: str
  head: str
  segments: list[Segment]
  stats: collections.Counter
  val_commit: str | None = None  # the first held-out commit (val_fraction > 0)


def val_start(n_commits: int, fraction: float) -> int | None:
  """Index of the first held-out commit: the last ceil(fraction * n) of n, at least 1 and
  at most n - 1; None when fraction is 0 or there is a single commit."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"val_fraction={fraction!r} must be in [0, 1)")
  if fraction == 0.0 or n_commits < 2:
    return None
  k = math.ceil(fraction * n_commits - 1e-9)  # 0.1 * 30 = 3.0000000000000004 -> 3
  return n_commits - min(max(k, 1), n_commits - 1)


def compile_episode(path: str, name: str, cfg: EpisodeConfig) -> Episode:
  """Reads and compiles one repository (raises GitSourceError on bad input)."""
  reader = GitReader(path, cfg.filter)
  stats = collections.Counter()
  segments: list[Segment] = []
  state = {"split": "train"}
  n_commits = val_from = None
  if cfg.val_fraction:
    n_commits = int(git(path, "rev-list", "--first-parent", "--count", reader.head))
    val_from = val_start(n_commits, cfg.val_fraction)
    if val_from is None:
      log.warning(
        "%s: a single commit; nothing held out for val_fraction=%s (the repository is all 'train')",
        name,
        cfg.val_fraction,
      )

  def start(reason, sha, teleported=None, files=None):
    files = dict(reader.view) if files is None else files
    ed = render.new_editor(cfg.rows, cfg.cols, files)
    comp = Compiler(ed, cfg.max_keys_per_commit)
    comp.emit([K.BOS])
    state.update(
      comp=comp, ci=[-1], commits=[], reason=reason, sha=sha, files=files, teleported=teleported
    )

  def close(n_keys):
    comp = state["comp"]
    if not state["commits"]:
      return
    ci = np.array(state["ci"][:n_keys], np.int32)
    ci[0] = ci[1] if len(ci) > 1 else 0
    segments.append(
      Segment(
        name,
        len(segments),
        state["reason"],
        state["sha"],
        state["files"],
        np.array(comp.keys[:n_keys], np.uint8),
        ci,
        state["commits"],
        state["teleported"],
        state["split"],
      )
    )

  start("start", None)
  val_commit = None
  for commit in reader.commits():
    stats["commits"] += 1
    if commit.index == val_from:  # a fresh segment from the parent's tree
      val_commit = commit.sha
      parent_tree = state["comp"].ed.file_texts()  # reader.view already has this commit
      close(len(state["comp"].keys))
      state["split"] = "validation"
      start("val_holdout", commit.parents[0], files=parent_tree)
    comp = state["comp"]
    before = len(comp.keys)
    teleport = commit.oversized
    if not teleport:
      try:
        comp.commit(commit.changes)
      except CapExceeded:
        teleport = True
      except CompileError as e:
        raise CompileError(f"{name}: commit {commit.sha}: {e}") from e
    if teleport:
      stats["skipped_commits"] += 1
      stats["teleport_commit_bytes" if commit.oversized else "teleport_key_cap"] += 1
      close(before)
      start("teleport", commit.sha, teleported=commit.sha)
      continue
    _check(comp, reader.view, commit, name)
    state["ci"].extend([commit.index] * (len(comp.keys) - before))
    state["commits"].append(commit.sha)
    if len(comp.keys) >= cfg.max_segment_steps:
      close(len(comp.keys))
      start("length", commit.sha)
  close(len(state["comp"].keys))
  if n_commits is not None:
    if stats["commits"] != n_commits:
      raise CompileError(f"{name}: git log gave {stats['commits']} commits, rev-list {n_commits}")
    stats["val_commits"] = n_commits - val_from if val_from is not None else 0
  stats.update(reader.skipped)
  stats["segments"] = len(segments)
  stats["keystrokes"] = sum(len(s.keys) for s in segments)
  return Episode(name, path, reader.head, segments, stats, val_commit)


def _check(comp: Compiler, view: dict[str, str], commit, name: str) -> None:
  files = comp.ed.files
  bad = set(files) ^ set(view)
  bad |= {
    c.path
    for c in commit.changes
    if c.path in files and c.path in view and "\n".join(files[c.path]) != view[c.path]
  }
  if bad:
    raise CompileError(f"{name}: commit {commit.sha}: editor differs from git on {sorted(bad)}")
