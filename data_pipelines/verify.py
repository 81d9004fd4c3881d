"""`--verify`: replays every stored segment on a fresh editor and compares it.

For each repository, Git is re-read (an independent pass of the git reader, not
the compiler); each segment's start tree is the filtered tree after its start
commit. The stored actions are replayed; every step whose stored frame, cursor,
mode or validity differs counts as a mismatch, and so does every COMMIT at which
the editor's files differ from Git's tree for that commit.
"""

import os

import numpy as np

from data_pipelines import codec, replay, sidecar, tfds_builder
from data_pipelines.git_reader import FilterConfig, GitReader


def _filter(cfg: dict) -> FilterConfig:
  f = cfg["filter"]
  return FilterConfig(
    tuple(f["extensions"]), tuple(f["names"]), f["max_blob_bytes"], f["max_commit_bytes"]
  )


def verify_repo(job) -> int:
  ds_dir, side, repo = job
  rows, cols, L = side["rows"], side["cols"], side["window"]
  reader = GitReader(repo["path"], _filter(side["config"]))
  commits = reader.commits()
  srcs = {}  # split -> data source (a repository's segments may span train and validation)
  bad, current = 0, [None]  # current: the last commit read from Git

  def advance_to(sha):
    if current[0] == sha:
      return
    for c in commits:
      current[0] = c.sha
      if c.sha == sha:
        return
    raise AssertionError(f"{repo['name']}: commit {sha} not in the first-parent history")

  for seg in (s for s in side["segments"] if s["repo"] == repo["name"]):
    if seg["start_commit"]:
      advance_to(seg["start_commit"])
    if seg["split"] not in srcs:
      srcs[seg["split"]] = tfds_builder.data_source(
        os.path.join(ds_dir, side["tfds_dir"]), seg["split"]
      )
    src = srcs[seg["split"]]
    recs = [src[i] for i in range(seg["first_record"], seg["first_record"] + seg["n_windows"])]
    keys = np.concatenate([r["actions"] for r in recs])[: seg["n_steps"]]
    if any(r["segment_id"] != seg["id"] for r in recs):
      bad += 1

    def on_commit(ed, t):
      nonlocal bad
      current[0] = next(commits).sha
      bad += ed.file_texts() != reader.view

    windows = replay.replay(dict(reader.view), keys, rows, cols, L, on_commit=on_commit, reuse=True)
    for w, r in zip(windows, recs):
      x = codec.decode_frames(r["frames"], L, rows, cols)
      same = (x == codec.cells(w.cp, w.st)).all(axis=(1, 2))
      same &= (r["cursor"] == w.cursor).all(axis=1) & (r["mode"] == w.mode)
      same &= (r["valid"] == w.valid) & (r["actions"] == w.actions)
      bad += int((~same).sum())
    bad += current[0] != seg["last_commit"]
  return bad


def verify_dir(ds_dir: str, workers: int = 1) -> int:
  """Number of mismatches in the dataset at `ds_dir` (0 when it is exact)."""
  side = sidecar.load(ds_dir)
  jobs = [(ds_dir, side, repo) for repo in side["repos"]]
  if workers > 1 and len(jobs) > 1:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
      return sum(pool.map(verify_repo, jobs))
  return sum(map(verify_repo, jobs))
