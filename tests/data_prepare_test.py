"""rcfam_jax.data: a dataset is reused only as it was built (its fingerprint), and the batches
check action ids against the model's vocabulary."""

import functools
import json
import os
import re
import shutil

import pytest

from data_pipelines import build, sidecar, synthetic, tokenizer
from data_pipelines.tokenizer import TokenizerError
from rcfam_jax import data
from rcfam_jax.config import DataConfig

ROWS, COLS, WINDOW = 12, 40, 32
FRAME = (ROWS, COLS)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
  root = tmp_path_factory.mktemp("prep")
  a = synthetic.make_repo(str(root / "alpha"), n_commits=6, seed=1, special=False).path
  b = synthetic.make_repo(str(root / "beta"), n_commits=4, seed=2, special=False).path
  return a, b


def config(srcs, d, **kw):
  return DataConfig(
    **{
      "dir": d,
      "sources": tuple(srcs),
      "val_sources": ("beta",),
      "val_fraction": 0.25,
      "window": WINDOW,
      "max_keys_per_commit": 3000,
      "max_segment_steps": 400,
      **kw,
    }
  )


@pytest.fixture(autouse=True)
def one_worker(monkeypatch):
  """prepare() builds in-process (no spawn pool): faster on a 2-core CI machine."""
  monkeypatch.setattr(
    data.build_lib, "build_from_sources", functools.partial(build.build_from_sources, workers=1)
  )


@pytest.fixture(scope="module")
def built(repos, tmp_path_factory):
  cfg = config(repos, str(tmp_path_factory.mktemp("ds") / "ds"))
  build.build_from_sources(
    list(cfg.sources),
    cfg.dir,
    ROWS,
    COLS,
    window=WINDOW,
    val_sources=cfg.val_sources,
    val_fraction=cfg.val_fraction,
    max_keys_per_commit=3000,
    max_segment_steps=400,
    workers=1,
  )
  return cfg


def sidecar_bytes(d):
  with open(os.path.join(d, "segments.json"), "rb") as f:
    return f.read()


def edit_sidecar(d, fn):
  path = os.path.join(d, "segments.json")
  with open(path) as f:
    side = json.load(f)
  fn(side)
  with open(path, "w") as f:
    json.dump(side, f)


def test_reused_when_it_matches(built, repos, monkeypatch):
  ds = data.prepare(built, FRAME)
  assert ds.splits == ("train", "validation") and ds.n_actions == 128
  monkeypatch.chdir(os.path.dirname(repos[0]))  # the same sources, spelled relative
  rel = config(["alpha", "./beta"], built.dir, val_sources=("./beta",))
  assert data.prepare(rel, FRAME).splits == ds.splits


@pytest.mark.parametrize(
  "change, diff, fix",
  [
    ({"window": 16}, "data.window: dataset 32, asked 16", "data.window=32"),
    ({"frame": (8, COLS)}, "model.rows: dataset 12, asked 8", "model.rows=12"),
    ({"val_fraction": 0.0}, "data.val_fraction: dataset 0.25, asked 0.0", "data.val_fraction=0.25"),
    (
      {"val_sources": ()},
      "data.val_sources: dataset ['beta'], asked []",
      "data.val_sources=['beta']",
    ),
    ({"val_sources": ("alpha",)}, "data.val_sources: dataset ['beta'], asked ['alpha']", None),
    ({"val_sources": ("gamma",)}, "data.val_sources: dataset ['beta'], asked ['gamma']", None),
    (
      {"max_keys_per_commit": 100_000},
      "data.max_keys_per_commit: dataset 3000, asked 100000",
      None,
    ),
    ({"max_segment_steps": 1 << 16}, "data.max_segment_steps: dataset 400, asked 65536", None),
    ({"sources": "one"}, "data.sources: dataset [{a!r}, {b!r}], asked [{a!r}]", None),
  ],
)
def test_mismatch_refused(built, repos, change, diff, fix):
  """A config that disagrees with the stored fingerprint is refused, naming the field, both
  values and the fix; the dataset is left as it was (with build=True too)."""
  if change.get("sources") == "one":
    change = {"sources": repos[:1]}
  diff = diff.format(a=repos[0], b=repos[1])
  before = sidecar_bytes(built.dir)
  frame = change.pop("frame", FRAME)
  for build_flag in (True, False):
    cfg = config(**{"srcs": repos, "d": built.dir, "build": build_flag, **change})
    with pytest.raises(sidecar.DatasetError) as e:
      data.prepare(cfg, frame)
    msg = str(e.value)
    assert msg.startswith(f"dataset {built.dir!r} was built otherwise than the config asks: ")
    assert diff in msg and "another directory" in msg and "--overwrite" in msg, msg
    assert fix is None or f"set {fix}" in msg
  assert sidecar_bytes(built.dir) == before


def test_cli_loads_the_experiment_as_main_does(built, repos, capsys):
  """`make data`: `python -m rcfam_jax.data --config SPEC[:ARG] --config.data.x=v` (the loader
  of rcfam_jax.main); this dataset's settings given as overrides reuse it as built."""
  smoke = os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments", "smoke.py")
  same = [
    f"--config.data.sources={tuple(repos)!r}",
    "--config.data.val_sources=('beta',)",
    "--config.data.val_fraction=0.25",
    f"--config.model.rows={ROWS}",
    f"--config.model.cols={COLS}",
    f"--config.data.window={WINDOW}",
    "--config.data.max_keys_per_commit",
    "3000",
    "--config.data.max_segment_steps=400",
  ]
  before = sidecar_bytes(built.dir)
  assert data.main(["--config", f"{smoke}:dir={built.dir}", *same]) == 0  # ARG: smoke's dir=
  out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert out["dir"] == built.dir and out["splits"] == ["train", "validation"]
  assert sidecar_bytes(built.dir) == before
  spec = f"--config={smoke}:dir={built.dir}"
  for argv, err in (
    ([spec, *same, "--config.data.window=16"], "data.window: dataset 32, asked 16"),
    ([spec, *same, "--config.data.windows=16"], "data has no field 'windows'"),
    ([spec, *same, "--config.data.window=wide"], "--config.data.window=wide"),
    (["--config=experiments/nope.py"], "no experiment 'experiments/nope.py'"),
  ):
    assert data.main(argv) == 2
    assert err in capsys.readouterr().err
  assert sidecar_bytes(built.dir) == before


def test_self_source_fresh_build_then_head_moved(tmp_path, monkeypatch, caplog):
  """`make train`'s case: source 'self' is built on first use and reused; a new commit makes
  the data stale: an error with data.build=True, a warning with data.build=False (use as
  built), and --overwrite rebuilds it. A rewritten history is named as such."""
  repo = synthetic.make_repo(str(tmp_path / "clone"), n_commits=3, special=False)
  monkeypatch.chdir(repo.path)
  cfg = config(["self"], str(tmp_path / "self_ds"), val_sources=(), val_fraction=0.3)
  old = repo.git("rev-parse", "HEAD")
  assert data.prepare(cfg, FRAME).splits == ("train", "validation")
  assert sidecar.load(cfg.dir)["fingerprint"]["sources"][0]["head"] == old
  before = sidecar_bytes(cfg.dir)
  assert data.prepare(cfg, FRAME).splits == ("train", "validation")  # reused, not rebuilt
  assert sidecar_bytes(cfg.dir) == before
  repo.write("src/new.c", "int fresh;\n")
  new = repo.commit("new work")
  stale = (
    f"source 'self' ({os.path.realpath(repo.path)}) is now at {new[:12]} but the dataset "
    f"was built from {old[:12]} (1 new commit): the data no longer matches its sources"
  )
  with pytest.raises(
    sidecar.DatasetError,
    match=re.escape(stale) + ".*--overwrite.*"
    r"data.build=False \(--config.data.build=False\)",
  ):
    data.prepare(cfg, FRAME)
  with caplog.at_level("WARNING", logger="rcfam_jax.data"):
    assert data.prepare(
      config(["self"], cfg.dir, val_sources=(), val_fraction=0.3, build=False), FRAME
    ).splits == ("train", "validation")
  assert stale in caplog.text and "using it as built" in caplog.text
  assert sidecar_bytes(cfg.dir) == before
  data.prepare(cfg, FRAME, overwrite=True)
  assert sidecar.load(cfg.dir)["fingerprint"]["sources"][0]["head"] == new
  assert data.prepare(cfg, FRAME).splits == ("train", "validation")
  repo.git("commit", "-q", "--amend", "-m", "rewritten")
  with pytest.raises(sidecar.DatasetError, match="not an ancestor: history rewritten"):
    data.prepare(cfg, FRAME)


@pytest.fixture()
def copy_of(built, tmp_path):
  d = str(tmp_path / "copy")
  shutil.copytree(built.dir, d)
  return d


def test_dataset_from_before_fingerprints(built, repos, copy_of):
  """A sidecar without 'fingerprint' is checked from its recorded config and repos; one too
  old to tell is refused with the fix."""
  edit_sidecar(copy_of, lambda s: s.pop("fingerprint"))
  assert data.prepare(config(repos, copy_of), FRAME).splits == ("train", "validation")
  with pytest.raises(sidecar.DatasetError, match=r"data.window: dataset 32, asked 64"):
    data.prepare(config(repos, copy_of, window=64), FRAME)
  edit_sidecar(copy_of, lambda s: s["config"].pop("val_fraction"))  # before temporal hold-out
  with pytest.raises(sidecar.DatasetError, match=r"data.val_fraction: dataset 0.0, asked 0.25"):
    data.prepare(config(repos, copy_of), FRAME)
  edit_sidecar(copy_of, lambda s: s["config"].pop("max_keys_per_commit"))
  with pytest.raises(
    sidecar.DatasetError,
    match=re.escape(os.path.join(copy_of, "segments.json"))
    + ".*lacks \\['max_keys_per_commit'\\].*rebuild",
  ):
    data.prepare(config(repos, copy_of), FRAME)


def test_builder_version_and_bad_sidecar(built, repos, copy_of):
  edit_sidecar(copy_of, lambda s: s["fingerprint"].update(builder_version="0.9.0"))
  with pytest.raises(sidecar.DatasetError) as e:
    data.prepare(config(repos, copy_of), FRAME)
  assert f"data.builder_version: dataset '0.9.0', asked '{sidecar.BUILDER_VERSION}'" in str(e.value)
  assert "set data." not in str(e.value) and "--overwrite" in str(e.value)
  path = os.path.join(copy_of, "segments.json")
  with open(path, "r+") as f:
    f.truncate(100)
  with pytest.raises(sidecar.DatasetError, match=re.escape(path) + ": not valid JSON.*rebuild"):
    data.prepare(config(repos, copy_of), FRAME)


def test_tokenizer_file_checked(built, repos, copy_of):
  """tokenizer_<N>.txt is learned once per size; one holding more than N tokens, or a
  truncated one, is refused naming the file."""
  base = len(tokenizer.base_vocab())
  ds = data.prepare(config(repos, copy_of, tokenizer_size=base + 40), FRAME)
  assert base < len(ds.tokenizer) <= base + 40 and ds.n_actions == len(ds.tokenizer)
  big = os.path.join(copy_of, f"tokenizer_{base + 40}.txt")
  small = os.path.join(copy_of, f"tokenizer_{base + 5}.txt")
  shutil.copy(big, small)
  with pytest.raises(
    sidecar.DatasetError,
    match=re.escape(small) + f": holds {len(ds.tokenizer)} tokens, more than the {base + 5}",
  ):
    data.prepare(config(repos, copy_of, tokenizer_size=base + 5), FRAME)
  with open(big, "r+") as f:
    f.seek(os.path.getsize(big) - 3)
    f.truncate()
  with pytest.raises(TokenizerError, match=re.escape(big) + r":\d+: not a JSON string"):
    data.prepare(config(repos, copy_of, tokenizer_size=base + 40), FRAME)


def test_old_action_encoding_refused_then_rebuilt(built, repos, copy_of):
  """A dataset without the current action encoding (built before it) is refused with the
  rebuild command; --overwrite rebuilds it; a tokenizer file learned with the old key bytes
  is refused too."""
  edit_sidecar(copy_of, lambda s: s.pop("action_encoding"))
  cfg = config(repos, copy_of, tokenizer_size=len(tokenizer.base_vocab()) + 40)
  with pytest.raises(
    sidecar.EncodingChanged,
    match="rebuild: action encoding changed.*python -m rcfam_jax.data --config .*--overwrite",
  ):
    data.prepare(cfg, FRAME)
  ds = data.prepare(cfg, FRAME, overwrite=True)
  assert sidecar.load(copy_of)["action_encoding"] == "xterm-v1" and ds.tokenizer is not None
  path = os.path.join(copy_of, f"tokenizer_{cfg.tokenizer_size}.txt")
  added = [t for t in tokenizer.base_vocab() if t.startswith(b"\x1b[=") or t == b"\xef\xbf\xbd"]
  legacy = [t for t in tokenizer.base_vocab() if t not in added]  # the base before the encoding
  tokenizer.Tokenizer(legacy + [b"int", b"\x1b[B\x1b[B"]).save(path)
  with pytest.raises(TokenizerError, match=re.escape(path) + ": rebuild: action encoding"):
    data.prepare(cfg, FRAME)


def test_vocab_size_checked(built):
  """train_reader / eval_batches(vocab_size=...) refuse an action id outside the vocabulary."""
  ds = data.prepare(built, FRAME)
  ok = data.train_reader(ds, 2, 16, 0, vocab_size=128, shard_index=0, shard_count=1)
  assert ok.next_batch()["actions"].max() < 128
  assert (
    max(b["actions"].max() for b in data.eval_batches(ds, "validation", 2, 16, 2, vocab_size=128))
    < 128
  )
  bad = data.train_reader(ds, 2, 16, 0, vocab_size=4, shard_index=0, shard_count=1)
  with pytest.raises(ValueError, match=r"action id \d+ .* outside the model's vocabulary of 4"):
    bad.next_batch()
  with pytest.raises(ValueError, match=r"\(validation\): action id \d+ .*vocabulary of 4 ids"):
    data.eval_batches(ds, "validation", 2, 16, 2, vocab_size=4)


def test_a_given_vocabulary_file_is_used_with_our_missing_keys_added(built, repos, tmp_path):
  """data.tokenizer_file: a FBAM_TOK v1.0 file made elsewhere (here: the 256 single bytes and
  the arrows, no Home/End/Delete and no control actions, like the author's) is used as is,
  plus the keys it has no token for; with tokenizer_size too it is refused."""
  path = tmp_path / "tokenizer.txt"
  tokens = [chr(b) for b in range(256)] + ["\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D", "\x1b[A\x1b[A"]
  path.write_text("# FBAM_TOK v1.0\n" + "".join(json.dumps(t) + "\n" for t in tokens))
  given = tokenizer.Tokenizer.load(str(path))
  assert given.missing_keys()  # e.g. HOME, END, <bos>
  ds = data.prepare(config(repos, built.dir, tokenizer_file=str(path)), FRAME)
  assert ds.tokenizer is not None and not ds.tokenizer.missing_keys()
  assert len(ds.tokenizer) == len(given) + len(given.missing_keys()) == ds.n_actions
  with pytest.raises(ValueError, match="tokenizer_file and data.tokenizer_size"):
    data.prepare(config(repos, built.dir, tokenizer_file=str(path), tokenizer_size=300), FRAME)
