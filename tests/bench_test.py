"""`python -m rcfam_jax.research.bench` end to end at a tiny size on CPU: every part runs, JSON
lines and the table come out (no timing asserts)."""

import importlib.util
import json
import subprocess
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
HAS_TORCH = importlib.util.find_spec("torch") is not None


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
      "--torch-python",
      sys.executable,
      "--torch-steps",
      "1",
      *TINY,
    ]
  )
  out = capsys.readouterr().out
  recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  kinds = {r["kind"] for r in recs}
  errors = [r for r in recs if "error" in r]
  if HAS_TORCH:  # the PyTorch FBAM ran, compiled and eager, and was compared
    assert not errors, errors
    assert {"torch_ref", "torch_compare"} <= kinds
    modes = {r["mode"]: r for r in recs if r["kind"] == "torch_compare"}
    assert set(modes) == {"compiled", "eager"} and modes["eager"]["ratio"] > 0
  else:  # both torch parts fail cleanly, naming the extra; every other part ran
    assert sorted(r["part"] for r in errors) == ["torch compiled", "torch eager"], errors
  assert {
    "train",
    "matmul_peak",
    "mfu",
    "feed",
    "lstm",
    "memory",
    "compile_memory",
    "longest_T",
    "sweep",
    "breakdown",
  } <= kinds
  train = next(r for r in recs if r["kind"] == "train" and r["T"] == 16)
  assert train["frames"] == "packed" and train["frames_bytes"] == 2 * 16 * 8 * 16 * 2  # uint16
  sweep = {r["label"]: r for r in recs if r["kind"] == "sweep"}
  assert sweep["head_remat convs"]["frames_per_s"] > 0 and "conv im2col" in sweep
  combo = sweep["conv_impl=parity,head_chunk=8"]  # a --sweep-set point, in its own process
  assert combo["conv_impl"] == "parity" and combo["head_chunk"] == 8
  if HAS_TORCH:
    assert combo["vs_torch"] == pytest.approx(
      combo["frames_per_s"] / modes["compiled"]["torch_frames_per_s"], rel=1e-3
    )
  assert [r["label"] for r in recs if r["kind"] == "sweep"][0] == "conv_impl=parity,head_chunk=8"
  parts = {r["label"]: r for r in recs if r["kind"] == "breakdown"}
  assert {"embed cells", "whole head"} <= set(parts) and parts["whole head"]["fwd_bwd_ms"] > 0
  feed = next(r for r in recs if r["kind"] == "feed")
  assert feed["inline_ratio"] > 0 and feed["pipeline_ratio"] > 0
  lstm = {r["label"]: r for r in recs if r["kind"] == "lstm"}
  assert set(lstm) == {"unroll 2, remat none", "unroll 8, remat step", "fused kernel"}
  assert lstm["unroll 8, remat step"]["vs"] == "unroll 2, remat none"  # gradient distance
  assert lstm["unroll 8, remat step"]["max_norm_rel_grad_diff"] < 1e-2
  assert "skipped" in lstm["fused kernel"] or lstm["fused kernel"]["max_norm_rel_grad_diff"] < 5e-2
  assert "measurement" in out and "(wall" in out
  assert ("speed-up over torch compiled" in out) == HAS_TORCH


@pytest.mark.skipif(HAS_TORCH, reason="the message for a machine without torch")
def test_torch_model_without_torch_names_the_extra():
  p = subprocess.run(
    [sys.executable, "-m", "rcfam_jax.research.torch_fbam", "--steps=1"],
    capture_output=True,
    text=True,
  )
  assert p.returncode != 0 and "pip install -e '.[torch]'" in p.stderr, p.stderr


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
  assert not [x for x in labels if x.startswith("conv ")]  # no conv point unless asked for
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


def test_bench_step_starts_fresh_windows_unless_carry_state():
  """The timed step is the training default's (fresh windows: the incoming LSTM state is
  ignored, as the PyTorch model's); --carry-state times the carried-state step."""
  import jax
  import numpy as np

  from rcfam_jax import model, train
  from rcfam_jax.research.bench import common

  m_over, b_over = bench.parse_overrides(TINY)
  cfg, bcfg = common.configs(m_over, b_over)
  tx = common.adamw()
  state = train.init_train_state(jax.random.PRNGKey(0), cfg, tx)
  batch = common.random_batch(1, cfg, 2, 4, bcfg.frames_on_host, packed=True)
  h0 = model.initial_state(state.params, 2)
  other = jax.tree.map(lambda x: x + 0.5, h0)
  losses = {}
  for carry in (False, True):
    step = common.make_step(cfg, bcfg, tx, carry)
    for name, rnn in (("h0", h0), ("other", other)):
      copy = jax.tree.map(lambda x: x.copy(), (state, rnn))  # the step donates them
      losses[carry, name] = float(step(copy[0], batch, copy[1])[2]["loss"])
  assert losses[False, "h0"] == losses[False, "other"]  # fresh: the state passed in is unused
  assert not np.isclose(losses[True, "h0"], losses[True, "other"])
  assert bench.parse_args(["--carry-state"]).carry_state and not bench.parse_args([]).carry_state
