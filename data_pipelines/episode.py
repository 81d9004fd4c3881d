"""A repository's first-parent history compiled into segments of keys (DATA.md §4-5).

A segment starts from a fresh editor holding a known tree (`start_files`, the
filtered tree after `start_commit`; empty for the first), with BOS (reset).
Commits over `max_keys_per_commit` keys or `max_commit_bytes` are not typed:
they are teleported (the tree jumps to the commit) and a new segment starts.
Segments are also cut at the first commit boundary past `max_segment_steps`.
"""

import collections
import dataclasses

import numpy as np

from data_pipelines import keys as K
from data_pipelines import render
from data_pipelines.compiler import CapExceeded, CompileError, Compiler
from data_pipelines.git_reader import FilterConfig, GitReader


@dataclasses.dataclass(frozen=True)
class EpisodeConfig:
    rows: int = 24
    cols: int = 80
    max_keys_per_commit: int = 100_000
    max_segment_steps: int = 1 << 16
    filter: FilterConfig = FilterConfig()


@dataclasses.dataclass
class Segment:
    repo: str                   # source name
    index: int                  # segment number within the repository
    reason: str                 # 'start', 'teleport' or 'length'
    start_commit: str | None    # editor starts with the filtered tree after this commit
    start_files: dict[str, str]
    keys: np.ndarray            # (N,) uint8 key ids, keys[0] == BOS
    commit_index: np.ndarray    # (N,) int32 first-parent index of the commit being typed
    commits: list[str]          # shas typed in this segment, in order
    teleported: str | None = None  # the commit that was jumped over to start this segment


@dataclasses.dataclass
class Episode:
    repo: str
    path: str
    head: str
    segments: list[Segment]
    stats: collections.Counter


def compile_episode(path: str, name: str, cfg: EpisodeConfig) -> Episode:
    """Reads and compiles one repository (raises GitSourceError on bad input)."""
    reader = GitReader(path, cfg.filter)
    stats = collections.Counter()
    segments: list[Segment] = []
    state = {}

    def start(reason, sha, teleported=None):
        files = dict(reader.view)
        ed = render.new_editor(cfg.rows, cfg.cols, files)
        comp = Compiler(ed, cfg.max_keys_per_commit)
        comp.emit([K.BOS])
        state.update(comp=comp, ci=[-1], commits=[], reason=reason, sha=sha, files=files,
                     teleported=teleported)

    def close(n_keys):
        comp = state["comp"]
        if not state["commits"]:
            return
        ci = np.array(state["ci"][:n_keys], np.int32)
        ci[0] = ci[1] if len(ci) > 1 else 0
        segments.append(Segment(name, len(segments), state["reason"], state["sha"], state["files"],
                                np.array(comp.keys[:n_keys], np.uint8), ci, state["commits"],
                                state["teleported"]))

    start("start", None)
    for commit in reader.commits():
        stats["commits"] += 1
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
    stats.update(reader.skipped)
    stats["segments"] = len(segments)
    stats["keystrokes"] = sum(len(s.keys) for s in segments)
    return Episode(name, path, reader.head, segments, stats)


def _check(comp: Compiler, view: dict[str, str], commit, name: str) -> None:
    files = comp.ed.files
    bad = set(files) ^ set(view)
    bad |= {c.path for c in commit.changes if c.path in files and c.path in view
            and "\n".join(files[c.path]) != view[c.path]}
    if bad:
        raise CompileError(f"{name}: commit {commit.sha}: editor differs from git on {sorted(bad)}")
