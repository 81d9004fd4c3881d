"""Git end-to-end and bad-input handling of the git reader.

Test 4 of docs/DATA_PIPELINE.md §9.
"""

import dataclasses
import math
import os
import re
import subprocess

import numpy as np
import pytest

from data_pipelines import episode, replay, synthetic
from data_pipelines import keys as K
from data_pipelines.git_reader import FilterConfig, GitReader, GitSourceError
from data_pipelines.text import normalize, normalize_path

ROWS, COLS = 12, 40
CFG = episode.EpisodeConfig(rows=ROWS, cols=COLS, max_keys_per_commit=3000)


def git(repo, *args):
  return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


def git_tree(repo, sha, cfg=FilterConfig()):
  """Independent oracle: the filtered, normalised tree of `sha` via ls-tree/cat-file."""
  out = {}
  for entry in git(repo, "ls-tree", "-r", "-z", sha).split(b"\0"):
    if not entry:
      continue
    meta, path = entry.split(b"\t", 1)
    mode, _, blob = meta.decode().split()
    path = path.decode()
    if mode in ("160000", "120000") or not cfg.allowed(path):
      continue
    data = git(repo, "cat-file", "blob", blob)
    if len(data) <= cfg.max_blob_bytes and b"\0" not in data[:8000]:
      out[normalize_path(path)] = normalize(data)
  return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
  return synthetic.make_repo(str(tmp_path_factory.mktemp("repo") / "r"), n_commits=10).path


def test_every_commit_matches_git(repo):
  ep = episode.compile_episode(repo, "syn", CFG)
  chain = git(repo, "rev-list", "--first-parent", "--reverse", "HEAD").decode().split()
  assert ep.stats["commits"] == len(chain) and ep.head == chain[-1]
  typed = [sha for s in ep.segments for sha in s.commits]
  teleported = [s.teleported for s in ep.segments if s.teleported]
  assert ep.stats["skipped_commits"] == len(teleported) == 1
  assert sorted(typed + teleported, key=chain.index) == chain
  for k in ("binary", "symlink", "submodule", "non_utf8_replaced", "cr_normalized"):
    assert ep.stats[k] >= 1, k
  for seg in ep.segments:
    assert seg.keys[0] == K.BOS and (seg.reason == "start") == (seg.index == 0)
    if seg.start_commit:
      assert seg.start_files == git_tree(repo, seg.start_commit)
    seen = []
    list(
      replay.replay(
        seg.start_files,
        seg.keys,
        ROWS,
        COLS,
        256,
        on_commit=lambda ed, t: seen.append(ed.file_texts()),
      )
    )
    assert len(seen) == len(seg.commits)
    for sha, files in zip(seg.commits, seen):
      assert files == git_tree(repo, sha), sha
    ci = seg.commit_index
    assert (np.diff(ci) >= 0).all() and chain[ci[-1]] == seg.commits[-1]
  # The merge is typed against its first parent; deleted files are gone.
  last = seen[-1]
  assert "src/side.c" in last and "src/f2.c" not in last and "src/renamed.c" in last
  assert "src/bin.c" not in last and last["src/crlf.c"] == "int a;\nint c;\n"


def test_segment_length_cut(repo):
  ep = episode.compile_episode(
    repo,
    "syn",
    episode.EpisodeConfig(rows=ROWS, cols=COLS, max_keys_per_commit=3000, max_segment_steps=500),
  )
  assert sum(s.reason == "length" for s in ep.segments) >= 3
  for seg in ep.segments:
    ed_files = []
    list(
      replay.replay(
        seg.start_files,
        seg.keys,
        ROWS,
        COLS,
        64,
        on_commit=lambda ed, t: ed_files.append(ed.file_texts()),
      )
    )
    assert ed_files[-1] == git_tree(repo, seg.commits[-1])


def test_bad_inputs(tmp_path):
  with pytest.raises(GitSourceError, match="no such directory"):
    GitReader(str(tmp_path / "missing"))
  (tmp_path / "plain").mkdir()
  with pytest.raises(GitSourceError, match="not a Git repository"):
    GitReader(str(tmp_path / "plain"))
  empty = synthetic.Repo(str(tmp_path / "empty"))
  with pytest.raises(GitSourceError, match="empty repository"):
    GitReader(empty.path)
  src = synthetic.make_repo(str(tmp_path / "src"), n_commits=3, special=False)
  shallow = tmp_path / "shallow"
  subprocess.run(
    ["git", "clone", "-q", "--depth", "1", f"file://{src.path}", str(shallow)],
    check=True,
    capture_output=True,
  )
  with pytest.raises(GitSourceError, match="shallow clone.*--unshallow"):
    GitReader(str(shallow))


def test_repo_must_be_the_top(tmp_path):
  """A subdirectory of a clone or of a bare repository is refused, naming the top (Git would
  read the whole history from it); a bare clone and a clone's .git read the same history."""
  src = synthetic.make_repo(str(tmp_path / "src"), n_commits=3, special=False)
  top = os.path.realpath(src.path)
  sub = os.path.join(src.path, "src")
  with pytest.raises(
    GitSourceError,
    match=re.escape(f"{sub}: a subdirectory of the clone {top}, not its top")
    + ".*"
    + re.escape(f"Pass --repo {top}"),
  ):
    GitReader(sub)
  bare = str(tmp_path / "bare.git")
  git(str(tmp_path), "clone", "-q", "--bare", src.path, bare)
  with pytest.raises(
    GitSourceError, match=re.escape(f"a subdirectory of the repository {os.path.realpath(bare)}")
  ):
    GitReader(os.path.join(bare, "refs"))
  want = episode.compile_episode(src.path, "r", CFG)
  for path in (bare, os.path.join(src.path, ".git")):
    got = episode.compile_episode(path, "r", CFG)
    assert got.head == want.head and len(got.segments) == len(want.segments) >= 1
    for a, b in zip(got.segments, want.segments):
      assert a.commits == b.commits and np.array_equal(a.keys, b.keys)


def test_size_caps(tmp_path):
  r = synthetic.Repo(str(tmp_path / "caps"))
  r.write("a.c", "x" * 3000 + "\n")
  r.write("b.c", "ok\n")
  r.commit("one")
  r.write("b.c", "ok\n" * 600)
  r.commit("big commit")
  caps = FilterConfig(max_blob_bytes=2500, max_commit_bytes=1500)
  rd = GitReader(r.path, caps)
  commits = list(rd.commits())
  assert rd.skipped["huge_file"] == 1 and "a.c" not in rd.view
  assert [c.oversized for c in commits] == [False, True]
  ep = episode.compile_episode(
    r.path, "caps", episode.EpisodeConfig(rows=ROWS, cols=COLS, filter=caps)
  )
  assert ep.stats["teleport_commit_bytes"] == 1 and ep.stats["skipped_commits"] == 1


def test_val_start():
  assert [episode.val_start(n, 0.2) for n in (1, 2, 5, 10, 21)] == [None, 1, 4, 8, 16]
  assert episode.val_start(30, 0.1) == 27 and episode.val_start(2, 0.9) == 1
  assert episode.val_start(10, 0.0) is None
  for bad in (1.0, -0.1, float("nan")):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
      episode.val_start(10, bad)


@pytest.mark.parametrize("fraction", [0.2, 0.04])
def test_val_holdout(repo, fraction):
  """The last ceil(F * n) commits start a reset segment from the parent's tree; every
  later segment is 'validation'; each commit is in exactly one split."""
  ep = episode.compile_episode(repo, "syn", dataclasses.replace(CFG, val_fraction=fraction))
  chain = git(repo, "rev-list", "--first-parent", "--reverse", "HEAD").decode().split()
  first = len(chain) - math.ceil(fraction * len(chain))
  assert ep.stats["val_commits"] == len(chain) - first and ep.val_commit == chain[first]
  splits = [s.split for s in ep.segments]
  h = splits.index("validation")
  assert splits == ["train"] * h + ["validation"] * (len(splits) - h)
  seg = ep.segments[h]
  assert seg.reason == "val_holdout" and seg.start_commit == chain[first - 1]
  assert seg.keys[0] == K.BOS and seg.commits[0] == chain[first]
  assert seg.commit_index[0] == first and seg.teleported is None
  assert seg.start_files == git_tree(repo, chain[first - 1])
  seen = []
  list(
    replay.replay(
      seg.start_files,
      seg.keys,
      ROWS,
      COLS,
      256,
      on_commit=lambda ed, t: seen.append(ed.file_texts()),
    )
  )
  assert [git_tree(repo, sha) for sha in seg.commits] == seen
  by_split = {"train": [], "validation": []}
  for s in ep.segments:
    by_split[s.split] += ([s.teleported] if s.teleported else []) + s.commits
  assert by_split["validation"] == chain[first:]
  if fraction == 0.2:  # a teleport right before the hold-out leaves an empty segment out
    assert by_split["train"] == chain[:first]
  assert set(by_split["train"]) <= set(chain[:first])
