"""`python -m rcfam_jax.research.bench` end to end at a tiny size on CPU: every part runs, JSON
lines and the table come out (no timing asserts)."""

import json
import sys

import pytest

from data_pipelines import build, sources, synthetic
from rcfam_jax.research.bench import cli as bench

TINY = [
  "rows=8",
  "cols=16",
  "d_model=16",
  "n_layer=1",
  "n_head=2",
  "downsample_blocks=1",
  "lstm_hidden=8",
  "vocab_size=128",
  "compute_dtype=float32",
  "head_chunk=4",
  "loss_chunk=8",
]
FAKE_TORCH = """import json, sys
print(json.dumps({"impl": "torch-ref", "T": 16, "B": 2, "step_s": 0.1, "frames_per_s": 320.0,
                  "peak_gib": 0.1, "argv": sys.argv[1:]}))
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp("bench")
  repo = synthetic.make_repo(str(root / "repo"), n_commits=6, seed=1)
  out = str(root / "ds")
  cfg = build.BuildConfig(
    rows=8, cols=16, window=32, max_keys_per_commit=3000, max_segment_steps=150, workers=1
  )
  build.build([sources.resolve(repo.path)], out, cfg)
  return out


def test_bench_runs_every_part_and_prints_the_table(dataset, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  torch_script = tmp_path / "fake_torch.py"
  torch_script.write_text(FAKE_TORCH)
  bench.main(
    [
      "--batch",
      "2",
      "--seq-len",
      "16",
      "--steps",
      "2",
      "--matmul-n",
      "64",
      "--mem-seq-lens",
      "8,16",
      "--long-seq-len",
      "32",
      "--lstm-batch",
      "2",
      "--lstm-hidden",
      "8",
      "--lstm-seq-len",
      "16",
      "--lstm-reps",
      "1",
      "--lstm-unrolls",
      "2",
      "--lstm-remats",
      "step",
      "--data",
      dataset,
      "--sweep-chunks",
      "",
      "--sweep-attention",
      "",
      "--sweep-conv",
      "im2col",
      "--sweep-set",
      "conv_impl=parity,head_chunk=8",
      "--sweep-head-remat",
      "convs",
      "--budget-s",
      "100000",
      "--compare-torch",
      str(torch_script),
      "--torch-python",
      sys.executable,
      *TINY,
    ]
  )
  out = capsys.readouterr().out
  recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  kinds = {r["kind"] for r in recs}
  assert not [r for r in recs if "error" in r], recs
  assert {
    "train",
    "matmul_peak",
    "mfu",
    "feed",
    "torch_ref",
    "torch_compare",
    "lstm",
    "memory",
    "compile_memory",
    "longest_T",
    "sweep",
    "breakdown",
  } <= kinds
  sweep = {r["label"]: r for r in recs if r["kind"] == "sweep"}
  assert sweep["head_remat convs"]["frames_per_s"] > 0 and "conv im2col" in sweep
  combo = sweep["conv_impl=parity,head_chunk=8"]  # a --sweep-set point, in its own process
  assert combo["conv_impl"] == "parity" and combo["head_chunk"] == 8
  assert combo["vs_torch"] == pytest.approx(combo["frames_per_s"] / 320.0, rel=1e-3)
  assert [r["label"] for r in recs if r["kind"] == "sweep"][0] == "conv_impl=parity,head_chunk=8"
  parts = {r["label"]: r for r in recs if r["kind"] == "breakdown"}
  assert {"embed cells", "whole head"} <= set(parts) and parts["whole head"]["fwd_bwd_ms"] > 0
  torch_ref = next(r for r in recs if r["kind"] == "torch_ref")
  assert "lengths=[16]" in torch_ref["argv"] and "d=16" in torch_ref["argv"]
  feed = next(r for r in recs if r["kind"] == "feed")
  assert feed["inline_ratio"] > 0 and feed["pipeline_ratio"] > 0
  lstm = {r["label"]: r for r in recs if r["kind"] == "lstm"}
  assert set(lstm) == {"unroll 2, remat none", "unroll 8, remat step", "fused kernel"}
  assert lstm["unroll 8, remat step"]["vs"] == "unroll 2, remat none"  # gradient distance
  assert lstm["unroll 8, remat step"]["max_norm_rel_grad_diff"] < 1e-2
  assert "skipped" in lstm["fused kernel"] or lstm["fused kernel"]["max_norm_rel_grad_diff"] < 5e-2
  assert "measurement" in out and "speed-up over torch-ref" in out and "(wall" in out


def test_unknown_override_and_part_are_rejected():
  with pytest.raises(SystemExit):
    bench.main(["d_modle=3"])
  with pytest.raises(SystemExit):
    bench.main(["--skip", "warp"])


def test_sweep_points_default_to_the_fastest_settings_first():
  """No --sweep-set: the measured fastest combinations come first; --sweep-set replaces them."""
  parse = lambda *a: bench.sweep_points(bench.parse_args(list(a)), {}, {})
  labels = [p["label"] for p in parse()]
  assert labels[: len(bench.SWEEP_SETS)] == list(bench.SWEEP_SETS)
  assert "conv parity" not in labels  # parity at the default chunk: no default point
  assert [
    p["label"]
    for p in parse(
      "--sweep-set",
      "head_chunk=8",
      "--sweep-chunks",
      "",
      "--sweep-head-remat",
      "",
      "--sweep-attention",
      "",
    )
  ] == ["head_chunk=8"]
  assert (
    parse(
      "--sweep-set", "", "--sweep-chunks", "", "--sweep-head-remat", "", "--sweep-attention", ""
    )
    == []
  )
