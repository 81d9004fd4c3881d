"""Builds a text-video dataset from Git repositories (`python -m data_pipelines.build`).

    python -m data_pipelines.build --repo PATH_OR_URL [--repo ...] --out DIR \\
        [--rows 24 --cols 80 --window 256] [--val-repo NAME_OR_SPEC ...] [--val-fraction F]
        [--verify]

An experiment's dataset is built by `make data EXP=NAME` (`python -m rcfam_jax.data --config
experiments/NAME.py`), which reads its config and calls `build_from_sources`; this package imports
nothing from rcfam_jax or experiments.

Stages: (1) compile each repository into segments (episode.py), in parallel over
repositories; (2) replay + render + encode each segment's windows, in parallel
over segments, streamed in order into the TFDS ArrayRecord writer; (3) write
`segments.json`; (4) with --verify, replay every stored segment on a fresh editor
and compare frames and, at every commit, the files with Git. Everything is
written to a temporary sibling directory that is renamed to DIR when complete.
Validation: whole repositories (--val-repo) and/or the last F of each other
repository's first-parent commits (--val-fraction F, episode.py).
The last stdout line is a JSON summary.
"""

import argparse
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time

import numpy as np

from data_pipelines import codec, episode, replay, sidecar, sources, tfds_builder
from data_pipelines import keys as K
from data_pipelines.git_reader import FilterConfig

SIDECAR = sidecar.SIDECAR
log = logging.getLogger(__name__)


class BuildError(RuntimeError):
  """Bad build arguments or output directory (names the fix)."""


@dataclasses.dataclass(frozen=True)
class BuildConfig:
  rows: int = 24
  cols: int = 80
  window: int = 256
  max_keys_per_commit: int = 100_000
  max_segment_steps: int = 1 << 16
  filter: FilterConfig = FilterConfig()
  workers: int = 0  # 0: os.cpu_count(); 1: no subprocesses
  val_fraction: float = 0.0  # last ceil(F * n) commits of each training repo -> 'validation'

  def episode(self, held_out: bool = False) -> episode.EpisodeConfig:
    """The compile config; no temporal hold-out for a repository held out whole."""
    return episode.EpisodeConfig(
      self.rows,
      self.cols,
      self.max_keys_per_commit,
      self.max_segment_steps,
      self.filter,
      0.0 if held_out else self.val_fraction,
    )


def render_segment(job) -> tuple[list[dict], float]:
  """Records of one segment and the seconds spent (a worker task)."""
  seg_id, seg, cfg = job
  t0 = time.process_time()
  out, L, enc = [], cfg.window, codec.Encoder()
  for i, w in enumerate(
    replay.replay(seg.start_files, seg.keys, cfg.rows, cfg.cols, L, reuse=True)
  ):
    ci = seg.commit_index[i * L : (i + 1) * L]
    ci = ci if len(ci) == L else np.pad(ci, (0, L - len(ci)), constant_values=ci[-1])
    frames = enc.encode(enc.cells(w.cp, w.st))
    out.append(tfds_builder.example(seg_id, i, seg.repo, frames, w, ci))
  return out, time.process_time() - t0


def _compile(job) -> episode.Episode:
  src, cfg, held_out = job
  return episode.compile_episode(src.path, src.name, cfg.episode(held_out))


class _Pool:
  """multiprocessing (spawn) pool, or in-process map when workers == 1."""

  def __init__(self, workers: int):
    self.pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None

  def imap(self, fn, jobs):
    return self.pool.imap(fn, jobs) if self.pool else map(fn, jobs)

  def close(self):
    if self.pool:
      self.pool.terminate()


def _tmp_dir(out_dir: str, overwrite: bool, occupant=lambda: "") -> str:
  """A fresh temporary directory beside `out_dir` (occupant: what a non-empty out_dir holds)."""
  out_dir = os.path.abspath(out_dir)
  if (
    os.path.exists(out_dir)
    and not overwrite
    and (not os.path.isdir(out_dir) or os.listdir(out_dir))
  ):
    raise BuildError(
      f"{out_dir}: exists and is not empty{occupant()}; remove it, pass "
      "--overwrite to replace it, or choose another --out"
    )
  parent = os.path.dirname(out_dir)
  tmp = os.path.join(parent, f".{os.path.basename(out_dir)}.tmp-{os.getpid()}")
  try:
    os.makedirs(parent, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
  except OSError as e:
    raise BuildError(f"{out_dir}: cannot write the output ({e}); choose a writable --out") from e
  return tmp


def _occupant(out_dir: str, srcs, cfg: BuildConfig, val) -> str:
  """How the dataset in `out_dir` compares with this build ('' if it holds none)."""
  try:
    fp = sidecar.fingerprint(sidecar.load(out_dir))
  except sidecar.EncodingChanged:
    return " and holds a dataset made with an older action encoding (rebuild it: --overwrite)"
  except (OSError, sidecar.DatasetError):
    return ""
  want = {
    "builder_version": sidecar.BUILDER_VERSION,
    "sources": [s.spec for s in srcs],
    "val_sources": list(val),
    "filter": dataclasses.asdict(cfg.filter),
    **{
      k: getattr(cfg, k)
      for k in (
        "rows",
        "cols",
        "window",
        "val_fraction",
        "max_keys_per_commit",
        "max_segment_steps",
      )
    },
  }
  diffs = sidecar.differences(fp, want)
  moved = [] if diffs else sidecar.moved_heads(fp, paths=[s.path for s in srcs])[0]
  if not diffs and not moved:
    return " and holds this very dataset (same sources, HEAD commits and settings)"
  return (
    " and holds a dataset built otherwise ("
    + "; ".join(([sidecar.describe(diffs)] if diffs else []) + moved)
    + ")"
  )


def _publish(tmp: str, out_dir: str) -> None:
  out_dir = os.path.abspath(out_dir)
  old = None
  if os.path.exists(out_dir):
    old = f"{tmp}.old"
    os.rename(out_dir, old)
  os.rename(tmp, out_dir)
  if old:
    shutil.rmtree(old)


def build(
  srcs: list[sources.Source],
  out_dir: str,
  cfg: BuildConfig = BuildConfig(),
  val: tuple[str, ...] = (),
  verify: bool = False,
  overwrite: bool = False,
) -> dict:
  """Builds the dataset into `out_dir`; returns the summary dict."""
  if not srcs:
    raise BuildError("no sources; pass --repo PATH_OR_URL (or 'self')")
  names = [s.name for s in srcs]
  if len(set(names)) != len(names):
    raise BuildError(f"two sources share a name: {names}; rename a local clone")
  unknown = set(val) - set(names) - {s.spec for s in srcs}
  if unknown:
    raise BuildError(f"--val-repo {sorted(unknown)} matches no source name {names}")
  if not 0.0 <= cfg.val_fraction < 1.0:
    raise BuildError(
      f"--val-fraction {cfg.val_fraction}: must be in [0, 1) (the fraction of "
      "each repository's last commits held out; 0 for none)"
    )
  tmp = _tmp_dir(out_dir, overwrite, lambda: _occupant(out_dir, srcs, cfg, val))
  try:
    summary = _build(srcs, tmp, out_dir, cfg, val, verify)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if summary["mismatches"]:  # bad data is not published; a previous dataset is kept
    shutil.rmtree(tmp, ignore_errors=True)
    log.error(
      "--verify found %d mismatches: %s was not written", summary["mismatches"], summary["out"]
    )
    return {**summary, "out": None}
  _publish(tmp, out_dir)
  return summary


def _build(srcs, tmp, out_dir, cfg, val, verify) -> dict:
  t0 = time.perf_counter()
  workers = cfg.workers or os.cpu_count() or 1
  split_of = {s.name: "validation" if (s.name in val or s.spec in val) else "train" for s in srcs}
  pool = _Pool(min(workers, max(len(srcs), 1)) if workers > 1 else 1)
  try:
    episodes = list(pool.imap(_compile, [(s, cfg, split_of[s.name] == "validation") for s in srcs]))
  finally:
    pool.close()
  for src, ep in zip(srcs, episodes):
    _check_typed(src, ep, cfg)
  plan = sidecar.plan(episodes, split_of, cfg.window)
  render_s = [0.0]
  pool = _Pool(workers)

  def generator(split):
    def gen():
      jobs = [(m["id"], seg, cfg) for m, seg in plan if m["split"] == split]
      for records, sec in pool.imap(render_segment, jobs):
        render_s[0] += sec
        for r in records:
          yield int(r["segment_id"]) * 10_000_000 + int(r["window_index"]), r

    return gen

  splits = sorted({m["split"] for m, _ in plan})
  if "validation" not in splits and cfg.val_fraction:
    log.warning(
      "val_fraction=%s gave no 'validation' segment (single-commit repositories, "
      "or every held-out commit was teleported: see --max-keys-per-commit); pass "
      "--val-repo with another source or a larger --val-fraction",
      cfg.val_fraction,
    )
  try:
    builder = tfds_builder.GitTextVideo(
      rows=cfg.rows,
      cols=cfg.cols,
      window=cfg.window,
      splits={s: generator(s) for s in splits},
      data_dir=tmp,
    )
    with tfds_builder.deterministic_serialization(), contextlib.redirect_stdout(sys.stderr):
      builder.download_and_prepare()  # TFDS prints progress to stdout
  finally:
    pool.close()
  shutil.rmtree(os.path.join(tmp, "downloads"), ignore_errors=True)
  tfds_dir = os.path.relpath(builder.data_dir, tmp)
  record = sidecar.record(episodes, srcs, split_of, plan, cfg, tfds_dir)
  with open(os.path.join(tmp, SIDECAR), "w") as f:
    json.dump(record, f, indent=1, sort_keys=True)
  wall = time.perf_counter() - t0
  frames = sum(m["n_steps"] for m, _ in plan)
  summary = {
    "commits": sum(e.stats["commits"] for e in episodes),
    "segments": len(plan),
    "frames": frames,
    "keystrokes": sum(e.stats["keystrokes"] for e in episodes),
    "skipped_commits": sum(e.stats["skipped_commits"] for e in episodes),
    "val_commits": sum(
      e.stats["commits"] if split_of[e.repo] == "validation" else e.stats["val_commits"]
      for e in episodes
    ),
    "val_frames": sum(m["n_steps"] for m, _ in plan if m["split"] == "validation"),
    "mismatches": None,
    "frames_per_s": round(frames / wall, 1),
    "render_frames_per_s_per_core": round(frames / max(render_s[0], 1e-9), 1),
    "seconds": round(wall, 2),
    "out": os.path.abspath(out_dir),
  }
  if verify:
    from data_pipelines import verify as verify_lib

    summary["mismatches"] = verify_lib.verify_dir(tmp, workers=workers)
  return summary


def _check_typed(src: sources.Source, ep: episode.Episode, cfg: BuildConfig) -> None:
  """A source whose segments hold no key but BOS and COMMIT markers is refused (BuildError)."""
  if any((seg.keys > K.COMMIT).any() for seg in ep.segments):
    return
  why = {
    k: ep.stats[k]
    for k in ("not_allowlisted", "binary", "huge_file", "teleport_key_cap", "teleport_commit_bytes")
    if ep.stats[k]
  }
  allow = ", ".join(cfg.filter.extensions + cfg.filter.names) if cfg.filter.extensions else "all"
  raise BuildError(
    f"{src.spec} ({src.path}): nothing to type: none of its {ep.stats['commits']} commits "
    f"changes an allowlisted text file within the caps (skipped: {why or 'none'}; allowlist: "
    f"{allow}; max_keys_per_commit {cfg.max_keys_per_commit}). Pass --all-extensions, raise "
    "--max-keys-per-commit, or drop this source"
  )


def build_from_sources(
  sources_: list[str],
  out_dir: str,
  rows: int = 24,
  cols: int = 80,
  *,
  window: int = 256,
  val_sources: tuple[str, ...] = (),
  val_fraction: float = 0.0,
  cache_dir: str | None = None,
  verify: bool = False,
  overwrite: bool = False,
  **config,
) -> dict:
  """Entry point for experiments / `make data`: sources are 'self', local paths or URLs."""
  srcs = [sources.resolve(s, cache_dir) for s in sources_]
  cfg = BuildConfig(rows=rows, cols=cols, window=window, val_fraction=val_fraction, **config)
  return build(srcs, out_dir, cfg, val=tuple(val_sources), verify=verify, overwrite=overwrite)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(
    prog="python -m data_pipelines.build", description=__doc__.split("\n")[0]
  )
  ap.add_argument("--repo", action="append", help="'self', a path or a Git URL")
  ap.add_argument("--out")
  ap.add_argument("--rows", type=int, default=24)
  ap.add_argument("--cols", type=int, default=80)
  ap.add_argument("--window", type=int, default=256)
  ap.add_argument("--max-keys-per-commit", type=int, default=100_000)
  ap.add_argument("--max-segment-steps", type=int, default=1 << 16)
  ap.add_argument("--all-extensions", action="store_true", help="no extension allowlist")
  ap.add_argument("--val-repo", action="append", default=[], help="source held out for validation")
  ap.add_argument(
    "--val-fraction",
    type=float,
    default=0.0,
    metavar="F",
    help="hold out the last ceil(F * n) commits of each other repo (0 <= F < 1)",
  )
  ap.add_argument("--cache-dir", default=None, help="where URLs are cloned (.cache/repos)")
  ap.add_argument("--workers", type=int, default=0)
  ap.add_argument("--verify", action="store_true")
  ap.add_argument("--overwrite", action="store_true")
  a = ap.parse_args(argv)
  logging.getLogger("absl").setLevel(logging.ERROR)
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  if not a.repo or not a.out:
    ap.error("pass --repo and --out (an experiment's dataset: make data EXP=NAME)")
  try:
    filt = FilterConfig(extensions=()) if a.all_extensions else FilterConfig()
    summary = build_from_sources(
      a.repo,
      a.out,
      a.rows,
      a.cols,
      window=a.window,
      val_sources=tuple(a.val_repo),
      val_fraction=a.val_fraction,
      max_keys_per_commit=a.max_keys_per_commit,
      max_segment_steps=a.max_segment_steps,
      cache_dir=a.cache_dir,
      verify=a.verify,
      overwrite=a.overwrite,
      filter=filt,
      workers=a.workers,
    )
  except (BuildError, sources.GitSourceError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(summary))
  return 1 if summary["mismatches"] else 0


if __name__ == "__main__":
  sys.exit(main())
