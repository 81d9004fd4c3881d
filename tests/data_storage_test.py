"""TFDS ArrayRecord storage without TensorFlow, the build CLI and --verify.

Tests 7 and 10 of docs/DATA_PIPELINE.md §9.
"""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import (
  build,
  codec,
  episode,
  replay,
  sidecar,
  sources,
  synthetic,
  tfds_builder,
  verify,
)
from data_pipelines import keys as K
from data_pipelines.git_reader import FilterConfig, GitSourceError
from data_pipelines.reader import Split

ROWS, COLS, WINDOW = 12, 40, 64
CFG = build.BuildConfig(
  rows=ROWS, cols=COLS, window=WINDOW, max_keys_per_commit=3000, max_segment_steps=700, workers=1
)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
  root = tmp_path_factory.mktemp("repos")
  a = synthetic.make_repo(str(root / "alpha"), n_commits=10, seed=1).path
  b = synthetic.make_repo(str(root / "beta"), n_commits=6, seed=2, special=False).path
  return a, b


@pytest.fixture(scope="module")
def built(repos, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("ds") / "ds")
  srcs = [sources.resolve(p) for p in repos]
  summary = build.build(srcs, out, CFG, val=("beta",), verify=True)
  return out, summary, srcs


def load_side(out):
  with open(os.path.join(out, "segments.json")) as f:
    return json.load(f)


def test_no_tensorflow():
  assert importlib.util.find_spec("tensorflow") is None


def test_round_trip_equals_generator(built):
  out, summary, srcs = built
  assert summary["mismatches"] == 0 and summary["skipped_commits"] == 1
  side = load_side(out)
  assert set(side["splits"]) == {"train", "validation"}
  assert {r["name"]: r["split"] for r in side["repos"]} == {"alpha": "train", "beta": "validation"}
  assert side["pipeline_version"] == tfds_builder.VERSION
  heads = {r["name"]: r["head"] for r in side["repos"]}
  assert (
    heads["alpha"]
    == subprocess.run(
      ["git", "-C", srcs[0].path, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
  )
  eps = {s.name: episode.compile_episode(s.path, s.name, CFG.episode()) for s in srcs}
  for split in ("train", "validation"):
    src = tfds_builder.data_source(os.path.join(out, side["tfds_dir"]), split)
    segs = [s for s in side["segments"] if s["split"] == split]
    assert len(src) == side["splits"][split]["records"] == sum(s["n_windows"] for s in segs)
    for meta in segs:
      seg = eps[meta["repo"]].segments[meta["index"]]
      assert meta["n_steps"] == len(seg.keys) and meta["first_commit"] == seg.commits[0]
      ws = list(replay.replay(seg.start_files, seg.keys, ROWS, COLS, WINDOW))
      for i, w in enumerate(ws):
        rec = src[meta["first_record"] + i]
        assert rec["segment_id"] == meta["id"] and rec["window_index"] == i
        assert rec["is_first"] == (i == 0)
        x = codec.decode_frames(rec["frames"], WINDOW, ROWS, COLS)
        assert np.array_equal(x, codec.cells(w.cp, w.st))
        for k in ("actions", "cursor", "mode", "valid"):
          assert np.array_equal(rec[k], getattr(w, k)), k
  seg_ids = [s["id"] for s in side["segments"]]
  assert seg_ids == list(range(len(seg_ids)))
  assert sum(s["reason"] == "length" for s in side["segments"]) >= 2


def test_two_builds_identical(repos, built, tmp_path):
  out2 = str(tmp_path / "again")
  cfg2 = build.BuildConfig(**{**CFG.__dict__, "workers": 2})  # the process pool path
  build.build([sources.resolve(p) for p in repos], out2, cfg2, val=("beta",))
  files = lambda d: sorted(
    os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs
  )
  assert files(built[0]) == files(out2)
  for rel in files(out2):
    with open(os.path.join(built[0], rel), "rb") as a, open(os.path.join(out2, rel), "rb") as b:
      assert a.read() == b.read(), rel


@pytest.fixture(scope="module")
def built_val(repos, tmp_path_factory):
  """alpha: the last 20% of its commits held out; beta: held out whole."""
  out = str(tmp_path_factory.mktemp("ds_val") / "ds")
  cfg = build.BuildConfig(**{**CFG.__dict__, "val_fraction": 0.2})
  summary = build.build([sources.resolve(p) for p in repos], out, cfg, val=("beta",), verify=True)
  return out, summary


def split_commits(out, side, repo):
  """{split: first-parent indices typed (valid steps) or teleported to} of one repository."""
  chain = subprocess.run(
    ["git", "-C", repo, "rev-list", "--first-parent", "--reverse", "HEAD"],
    capture_output=True,
    text=True,
  ).stdout.split()
  name = os.path.basename(repo)
  got = {}
  for split in side["splits"]:
    src = tfds_builder.data_source(os.path.join(out, side["tfds_dir"]), split)
    idx = set()
    for m in side["segments"]:
      if m["repo"] == name and m["split"] == split:
        recs = [src[m["first_record"] + i] for i in range(m["n_windows"])]
        idx |= {int(c) for r in recs for c in r["commit_index"][r["valid"]]}
        idx |= {chain.index(m["teleported"])} if m["teleported"] else set()
    got[split] = idx
  return got, chain


def test_val_fraction_split(repos, built_val):
  out, summary = built_val
  side = load_side(out)
  assert summary["mismatches"] == 0 and set(side["splits"]) == {"train", "validation"}
  alpha = next(r for r in side["repos"] if r["name"] == "alpha")
  got, chain = split_commits(out, side, repos[0])
  first = len(chain) - 5  # ceil(0.2 * 21)
  assert alpha["stats"]["val_commits"] == 5 and alpha["val_commit"] == chain[first]
  assert got["train"] == set(range(first)) and got["validation"] == set(range(first, len(chain)))
  val = [m for m in side["segments"] if m["repo"] == "alpha" and m["split"] == "validation"]
  head = val[0]
  assert head["reason"] == "val_holdout" and head["start_commit"] == chain[first - 1]
  assert head["first_commit"] == chain[first] and head["first_commit_index"] == first
  rec = tfds_builder.data_source(os.path.join(out, side["tfds_dir"]), "validation")[
    head["first_record"]
  ]
  assert rec["is_first"] and rec["actions"][0] == K.BOS
  assert all(m["index"] > head["index"] for m in val[1:])
  # beta is held out whole: no temporal hold-out segment, all of it in validation.
  beta = [m for m in side["segments"] if m["repo"] == "beta"]
  assert {m["split"] for m in beta} == {"validation"} and "val_holdout" not in {
    m["reason"] for m in beta
  }
  got, chain = split_commits(out, side, repos[1])
  assert got == {"train": set(), "validation": set(range(len(chain)))}
  assert summary["val_commits"] == 5 + len(chain)
  assert summary["val_frames"] == side["splits"]["validation"]["steps"]
  assert Split(out, "validation").segments == [
    m for m in side["segments"] if m["split"] == "validation"
  ]


def test_val_fraction_deterministic(repos, built_val, tmp_path):
  out2 = str(tmp_path / "again")
  cfg2 = build.BuildConfig(**{**CFG.__dict__, "val_fraction": 0.2, "workers": 2})
  build.build([sources.resolve(p) for p in repos], out2, cfg2, val=("beta",))
  files = lambda d: sorted(
    os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs
  )
  assert files(built_val[0]) == files(out2)
  for rel in files(out2):
    with open(os.path.join(built_val[0], rel), "rb") as a, open(os.path.join(out2, rel), "rb") as b:
      assert a.read() == b.read(), rel


def test_val_fraction_errors_and_single_commit(repos, tmp_path, caplog, capsys):
  src = [sources.resolve(repos[1])]
  for bad in (1.0, -0.1):
    with pytest.raises(build.BuildError, match=r"--val-fraction .*must be in \[0, 1\)"):
      build.build(
        src, str(tmp_path / "bad"), build.BuildConfig(**{**CFG.__dict__, "val_fraction": bad})
      )
  assert (
    build.main(
      [
        "--repo",
        repos[1],
        "--out",
        str(tmp_path / "bad"),
        "--val-fraction",
        "1.5",
        "--workers",
        "1",
      ]
    )
    == 2
  )
  assert "must be in [0, 1)" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "bad")
  one = synthetic.Repo(str(tmp_path / "one"))
  one.write("a.c", "int a;\n")
  one.commit("only")
  out = str(tmp_path / "one_ds")
  cfg = build.BuildConfig(**{**CFG.__dict__, "val_fraction": 0.2})
  with caplog.at_level("WARNING"):
    summary = build.build([sources.resolve(one.path)], out, cfg, verify=True)
  assert "a single commit" in caplog.text and "no 'validation' segment" in caplog.text
  side = load_side(out)
  assert summary["mismatches"] == 0 and summary["val_commits"] == summary["val_frames"] == 0
  assert set(side["splits"]) == {"train"} and side["repos"][0]["stats"]["val_commits"] == 0
  assert {m["split"] for m in side["segments"]} == {"train"}
  with pytest.raises(KeyError, match="--val-repo.*--val-fraction"):
    Split(out, "validation")


def test_golden_hash(tmp_path):
  """A fixed synthetic repository gives a stable dataset; bump VERSION on format changes."""
  repo = synthetic.make_repo(str(tmp_path / "golden"), n_commits=4, seed=7)
  out = str(tmp_path / "ds")
  build.build([sources.resolve(repo.path)], out, CFG)
  side = load_side(out)
  h = hashlib.sha256(json.dumps(side["segments"], sort_keys=True).encode())
  for f in sorted(os.listdir(os.path.join(out, side["tfds_dir"]))):
    if ".array_record" in f:
      with open(os.path.join(out, side["tfds_dir"], f), "rb") as fh:
        h.update(fh.read())
  assert h.hexdigest()[:16] == GOLDEN_HASH


GOLDEN_HASH = "6fb99c6279cdd343"


def test_cli_verify_and_errors(repos, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  cmd = [
    sys.executable,
    "-m",
    "data_pipelines.build",
    "--repo",
    repos[1],
    "--rows",
    "12",
    "--cols",
    "40",
    "--window",
    "32",
    "--workers",
    "1",
  ]
  p = subprocess.run(
    cmd + ["--out", str(tmp_path / "o"), "--verify"], capture_output=True, text=True, env=env
  )
  assert p.returncode == 0, p.stderr
  summary = json.loads(p.stdout.strip().split("\n")[-1])
  for k in (
    "commits",
    "segments",
    "frames",
    "keystrokes",
    "skipped_commits",
    "mismatches",
    "frames_per_s",
  ):
    assert k in summary
  assert summary["mismatches"] == 0 and summary["frames"] == summary["keystrokes"] > 0
  p = subprocess.run(cmd + ["--out", str(tmp_path / "o")], capture_output=True, text=True, env=env)
  assert p.returncode == 2 and "not empty" in p.stderr
  (tmp_path / "file").write_text("")  # unwritable: the parent is a file (works as root too)
  p = subprocess.run(
    cmd + ["--out", str(tmp_path / "file" / "x")], capture_output=True, text=True, env=env
  )
  assert p.returncode == 2 and "cannot write" in p.stderr


def test_failed_build_leaves_nothing(tmp_path):
  (tmp_path / "plain").mkdir()
  with pytest.raises(GitSourceError, match="not a Git repository"):
    build.build([sources.resolve(str(tmp_path / "plain"))], str(tmp_path / "out"), CFG)
  assert sorted(os.listdir(tmp_path)) == ["plain"]


def test_sources(repos, tmp_path, monkeypatch):
  monkeypatch.chdir(repos[0])
  me = sources.resolve("self")
  assert me.path == os.path.realpath(repos[0]) and me.name == "alpha"
  url = f"file://{repos[1]}"
  s = sources.resolve(url, str(tmp_path / "cache"))
  assert os.path.isdir(s.path) and s.name == "beta"
  assert sources.resolve(url, str(tmp_path / "cache")) == s  # cached: no second clone
  with pytest.raises(GitSourceError, match="pass the local path"):
    sources.resolve("file:///nonexistent/repo.git", str(tmp_path / "cache"))


def test_imports_nothing_from_the_trainer_or_experiments():
  """data_pipelines is the low-level tool; `make data` (rcfam_jax.data) reads experiments."""
  root = os.path.dirname(build.__file__)
  for name in sorted(os.listdir(root)):
    if name.endswith(".py"):
      with open(os.path.join(root, name)) as f:
        text = f.read()
      assert not re.search(r"^\s*(from|import)\s+(rcfam_jax|experiments)\b", text, re.M), name
      assert not re.search(r"[\"']experiments\.", text), name  # no import_module either
  with pytest.raises(SystemExit):  # --exp is gone: python -m rcfam_jax.data --config ...
    build.main(["--exp", "smoke"])


def test_fingerprint_stored(built, repos):
  """segments.json records what built it: sources, HEADs, size, window, split, caps, version."""
  out, _, srcs = built
  fp = load_side(out)["fingerprint"]
  assert fp == sidecar.fingerprint(load_side(out))
  assert [s["source"] for s in fp["sources"]] == list(repos)
  assert [s["head"] for s in fp["sources"]] == [sources.head(p) for p in repos]
  assert fp["val_sources"] == ["beta"] and fp["val_fraction"] == 0.0
  assert (fp["rows"], fp["cols"], fp["window"]) == (ROWS, COLS, WINDOW)
  assert (fp["max_keys_per_commit"], fp["max_segment_steps"]) == (3000, 700)
  assert fp["builder_version"] == tfds_builder.VERSION and fp["filter"]["max_blob_bytes"] > 0
  want = {"sources": list(repos), "val_sources": ["beta"], "window": WINDOW, "rows": ROWS}
  assert sidecar.differences(fp, want) == [] and sidecar.moved_heads(fp) == ([], [])
  assert sidecar.differences(fp, {**want, "window": 32, "val_sources": []}) == [
    ("val_sources", ["beta"], []),
    ("window", WINDOW, 32),
  ]


def test_existing_output_named(repos, tmp_path, capsys):
  """A second build into a dataset directory says whether it holds the same dataset, or how
  it differs; --overwrite replaces it."""
  args = [
    "--repo",
    repos[1],
    "--out",
    str(tmp_path / "o"),
    "--rows",
    "12",
    "--cols",
    "40",
    "--window",
    "32",
    "--workers",
    "1",
    "--max-keys-per-commit",
    "3000",
  ]
  assert build.main(args) == 0
  assert build.main(args) == 2
  assert "this very dataset (same sources, HEAD commits and settings)" in capsys.readouterr().err
  assert build.main(args + ["--window", "16", "--val-fraction", "0.2"]) == 2
  err = capsys.readouterr().err
  assert (
    "not empty and holds a dataset built otherwise (window: dataset 32, asked 16; "
    "val_fraction: dataset 0.0, asked 0.2)"
    in err
    and "--overwrite" in err
  )
  assert build.main(args + ["--window", "16", "--overwrite"]) == 0
  assert load_side(str(tmp_path / "o"))["fingerprint"]["window"] == 16


def test_subdirectory_refused(repos, tmp_path, capsys):
  sub = os.path.join(repos[1], "src")
  assert build.main(["--repo", sub, "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
  err = capsys.readouterr().err
  assert f"{sub}: a subdirectory of the clone {os.path.realpath(repos[1])}" in err
  assert not os.path.exists(tmp_path / "o")


def docs_only_repo(path):
  r = synthetic.Repo(path)
  r.write("README.md", "hello\n")
  r.commit("docs")
  r.write("README.md", "hello again\n")
  r.commit("more docs")
  r.commit("empty")
  return r.path


def test_nothing_to_type(repos, tmp_path):
  """A source whose commits type nothing (only BOS and <commit> markers) is a BuildError
  naming it, alone or beside a source that types."""
  docs = docs_only_repo(str(tmp_path / "docs"))
  for srcs in ([docs], [repos[1], docs]):
    with pytest.raises(
      build.BuildError,
      match=re.escape(docs) + r".*nothing to type: none "
      r"of its 3 commits .*not_allowlisted.*--all-extensions",
    ):
      build.build([sources.resolve(p) for p in srcs], str(tmp_path / "out"), CFG)
    assert sorted(os.listdir(tmp_path)) == ["docs"]
  cfg = build.BuildConfig(**{**CFG.__dict__, "filter": FilterConfig(extensions=())})
  summary = build.build([sources.resolve(docs)], str(tmp_path / "all"), cfg)
  assert summary["keystrokes"] > 10  # --all-extensions types README.md


def test_failed_overwrite_keeps_the_dataset(repos, tmp_path):
  """Nothing lost: a build that fails midway (nothing to type, a failing writer, --verify
  mismatches) leaves the previous dataset byte-identical and no temporary directory."""
  out = str(tmp_path / "ds")
  build.build([sources.resolve(repos[1])], out, CFG)
  side = open(os.path.join(out, "segments.json"), "rb").read()
  docs = docs_only_repo(str(tmp_path / "docs"))
  with pytest.raises(build.BuildError, match="nothing to type"):
    build.build([sources.resolve(docs)], out, CFG, overwrite=True)

  def boom(*a, **k):
    raise OSError("disk full")

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(build, "render_segment", boom)
    with pytest.raises(OSError, match="disk full"):
      build.build([sources.resolve(repos[0])], out, CFG, overwrite=True)
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(verify, "verify_dir", lambda *a, **k: 3)
    summary = build.build([sources.resolve(repos[0])], out, CFG, overwrite=True, verify=True)
  assert summary["mismatches"] == 3 and summary["out"] is None
  assert open(os.path.join(out, "segments.json"), "rb").read() == side
  assert sorted(os.listdir(tmp_path)) == ["docs", "ds"]
  assert Split(out).segments == load_side(out)["segments"]


@pytest.fixture()
def copy_of(built, tmp_path):
  dst = str(tmp_path / "copy")
  shutil.copytree(built[0], dst)
  return dst


def _truncate(side, text):
  return text[: len(text) // 2]


def _drop_key(side, text):
  del side["segments"][3]["n_steps"]
  return json.dumps(side)


def _wrong_windows(side, text):
  side["segments"][2]["n_windows"] += 1
  return json.dumps(side)


def _wrong_count(side, text):
  side["splits"]["train"]["records"] -= 1
  return json.dumps(side)


def _drop_fingerprint_field(side, text):
  del side["fingerprint"]["window"]
  return json.dumps(side)


def _not_object(side, text):
  return "[]"


@pytest.mark.parametrize(
  "edit, what",
  [
    (_truncate, "not valid JSON"),
    (_drop_key, r"segments\[3\]: 'n_steps' is missing"),
    (_wrong_windows, r"segments\[2\] .* is out of place"),
    (_wrong_count, r"splits\['train'\] is .* but its segments give"),
    (_drop_fingerprint_field, r"'fingerprint' lacks \['window'\]"),
    (_not_object, "not an object"),
  ],
)
def test_bad_sidecar_named(copy_of, edit, what):
  """A truncated or hand-edited segments.json is a DatasetError naming the file, what is
  wrong and the fix, from the reader and from --verify."""
  path = os.path.join(copy_of, "segments.json")
  with open(path) as f:
    text = f.read()
  with open(path, "w") as f:
    f.write(edit(json.loads(text), text))
  msg = re.escape(path) + ": " + what + ".*truncated or was edited: rebuild the dataset"
  with pytest.raises(sidecar.DatasetError, match=msg):
    Split(copy_of)
  with pytest.raises(sidecar.DatasetError, match=msg):
    verify.verify_dir(copy_of)
