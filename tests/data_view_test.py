"""`python -m data_pipelines.view`: text output and an asciicast that replays in pyte."""

import json

import pyte
import pytest

from data_pipelines import build, codec, sources, synthetic, view
from data_pipelines.ansi import row_text
from data_pipelines.reader import Split


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  root = tmp_path_factory.mktemp("view")
  repo = synthetic.make_repo(str(root / "repo"), n_commits=2, seed=4, special=False)
  out = str(root / "ds")
  build.build(
    [sources.resolve(repo.path)], out, build.BuildConfig(rows=10, cols=30, window=64, workers=1)
  )
  return out


def test_text(ds, capsys):
  assert view.main([ds, "--start", "30", "--steps", "2"]) == 0
  out = capsys.readouterr().out.split("\n")
  assert out[0].startswith("--- step 30") and "next key" in out[0]
  assert len(out[1]) == 30 and out[11].startswith("--- step 31")


def test_asciicast(ds, tmp_path):
  path = str(tmp_path / "a.cast")
  assert view.main([ds, "--steps", "0", "--cast", path]) == 0
  lines = open(path).read().strip().split("\n")
  header = json.loads(lines[0])
  assert header["version"] == 2 and (header["width"], header["height"]) == (30, 10)
  split = Split(ds)
  assert len(lines) - 1 == split.segments[0]["n_steps"]
  screen = pyte.Screen(30, 10)
  stream = pyte.Stream(screen)
  times = []
  for line in lines[1:]:
    t, kind, data = json.loads(line)
    assert kind == "o"
    times.append(t)
    stream.feed(data)
  assert times == sorted(times)
  last = split.segments[0]["n_steps"] - 1
  cp, _ = codec.split_cells(split.cells(last // 64)[last % 64])
  assert screen.display == [row_text(r) for r in cp]
  assert view.main([ds, "--segment", "99"]) == 2
