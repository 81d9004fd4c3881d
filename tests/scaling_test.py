"""Scaling study: power-law fit, wall-time crossovers, and the run -> fit report on a tiny sweep."""

import glob
import json
import os

import numpy as np
import pytest

from data_pipelines import synthetic
from rcfam_jax import experiment
from rcfam_jax.research.scaling import fit, sweep
from rcfam_jax.research.scaling.__main__ import main

SEQ_LENS = (2, 16, 128, 512, 2048)


def _run(t, steps_losses, batch=16):
  evals = [{"step": s, "time_s": float(s) * t / 100, "val_loss": v} for s, v in steps_losses]
  return {
    "name": f"T{t}",
    "workdir": "",
    "seq_len": t,
    "batch_size": batch,
    "eval_seq_len": 512,
    "train": [],
    "evals": evals,
  }


def test_power_law_recovers_alpha_and_a_per_step():
  rng = np.random.default_rng(0)
  steps = [500, 1000, 2000, 4000]
  alphas = dict(zip(steps, (0.05, 0.12, 0.2, 0.3)))
  amps = dict(zip(steps, (6.0, 5.0, 4.5, 4.0)))
  runs = [
    _run(t, [(s, amps[s] * t ** -alphas[s] * np.exp(rng.normal(0, 3e-4))) for s in steps])
    for t in SEQ_LENS
  ]
  rows = fit.alpha_by_step(runs)
  assert [r["step"] for r in rows] == steps
  for r in rows:
    assert r["n"] == 5
    assert abs(r["alpha"] - alphas[r["step"]]) < 0.01, r
    assert abs(r["A"] - amps[r["step"]]) < 0.01, r
    lo, hi = r["alpha_ci"]
    assert lo < alphas[r["step"]] < hi and hi - lo < 0.01
  assert np.all(np.diff([r["alpha"] for r in rows]) > 0)  # alpha rises over steps


def test_power_law_two_points_and_errors():
  r = fit.power_law([2, 8], [4.0, 2.0])
  assert r["alpha"] == pytest.approx(0.5) and r["A"] == pytest.approx(4 * 2**0.5)
  assert r["alpha_ci"] is None and "no CI" in r["ci_note"]
  with pytest.raises(ValueError, match="distinct"):
    fit.power_law([4, 4], [1.0, 2.0])


def test_steps_matched_within_tolerance():
  runs = [_run(2, [(100, 3.0), (200, 2.5)]), _run(8, [(101, 2.0), (203, 1.5)])]
  assert [r["step"] for r in fit.alpha_by_step(runs)] == []
  assert [r["step"] for r in fit.alpha_by_step(runs, tol=5)] == [100, 200]


def test_crossover_at_known_time():
  t = np.linspace(0, 100, 41)
  short = (t, 3.0 - 0.01 * t)  # the shorter run starts lower...
  long = (t, 3.2 - 0.02 * t)  # ...and the longer one falls faster: equal at t = 20
  c = fit.crossover(short, long)
  assert c["status"] == "crossed" and c["time_s"] == pytest.approx(20.0, abs=1e-6)
  assert c["below_at_end"]
  # Different time grids (the longer run logs less often) and a curved loss: within one interval.
  tl = np.linspace(0, 100, 11)
  c = fit.crossover((t, 3.0 - 0.01 * t), (tl, 3.2 - 0.02 * tl + 1e-5 * (tl - 20) ** 2))
  assert c["status"] == "crossed" and abs(c["time_s"] - 20.0) < 1.0


def test_crossover_not_yet_and_below_from_start():
  t = np.linspace(0, 50, 11)
  c = fit.crossover((t, 3.0 - 0.01 * t), (t, 3.5 - 0.011 * t))
  assert c["status"] == "not yet" and c["time_s"] is None and not c["below_at_end"]
  c = fit.crossover((t, 3.0 - 0.01 * t), (t, 2.0 - 0.01 * t))
  assert c["status"] == "below from start"


def test_elapsed_skips_restart_gaps_and_eval_time():
  rows = [
    {"step": 2, "wall_time": 0.0, "train_loss": 1},
    {"step": 4, "wall_time": 1.0, "train_loss": 1},
    {"step": 4, "wall_time": 3.0, "val_loss": 1},  # 2 s of evaluation: not training
    {"step": 6, "wall_time": 4.0, "train_loss": 1},
    {"step": 8, "wall_time": 5000.0, "train_loss": 1},  # a restart
    {"step": 10, "wall_time": 5001.5, "train_loss": 1},
  ]
  np.testing.assert_allclose(fit.elapsed(rows, max_gap_s=600), [0, 1, 1, 2, 2, 3.5])


def test_load_run_counts_the_steps_before_the_first_row(tmp_path):
  run = tmp_path / "T64"
  run.mkdir()
  (run / "config.json").write_text(
    json.dumps({"train": {"seq_len": 64, "batch_size": 2, "eval_seq_len": 64, "eval_every": 8}})
  )
  rows = [
    {"step": 8, "wall_time": 100.0, "val_loss": 5.0},  # first row: an early evaluation
    {"step": 20, "wall_time": 112.0, "train_loss": 4.0, "frames_per_s": 128.0},
    {"step": 24, "wall_time": 116.0, "val_loss": 4.5},
  ]
  (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  r = fit.load_run(str(run))  # 128 frames/s at 2 x 64 frames per step: 1 s per step
  assert [e["time_s"] for e in r["evals"]] == [8.0, 24.0]


def test_equal_tokens_plan_scales_batch():
  runs = sweep.plan("compilers", [2, 16, 128, 512, 2048], equal_tokens=True, steps=10)
  assert {r["tokens_per_step"] for r in runs} == {16 * 2048}
  assert [r["batch_size"] for r in runs] == [16384, 2048, 256, 64, 16]
  assert {r["config"].train.eval_seq_len for r in runs} == {512}
  assert [r["source"] for r in runs][0] == "experiments/compilers_2.py"
  with pytest.raises(experiment.ExperimentError, match="train has no field 'nope'"):
    sweep.plan("compilers", [2, 16], overrides=("--config.train.nope=1",))


def test_tokens_per_step_is_the_control_without_its_longest_run():
  """The author's-regime control of docs/SCALING.md: 4,096 actions per step at T < 2048."""
  runs = sweep.plan("scaling_author", [32, 128, 512], arg="batch=2", tokens_per_step=4096)
  assert [r["batch_size"] for r in runs] == [128, 32, 8]
  assert {r["tokens_per_step"] for r in runs} == {4096}
  assert {r["config"].train.batch_size * r["seq_len"] for r in runs} == {4096}
  with pytest.raises(ValueError, match="positive integer"):
    sweep.plan("scaling_author", [32], tokens_per_step=0)
  with pytest.raises(ValueError, match="do not override it as well"):
    sweep.plan(
      "scaling_author", [32], tokens_per_step=64, overrides=("--config.train.batch_size=4",)
    )
  args = ["run", "--exp", "smoke", "--seq-lens", "4", "--root", "/nonexistent/x"]
  with pytest.raises(SystemExit):  # argparse's error line, before anything is written
    main([*args, "--tokens-per-step", "0"])


def test_plan_loads_as_main_does():
  """--config.* overrides are config_flags': typed (a None-able field too), named when wrong."""
  base = sweep.plan("compilers", [32], steps=3, overrides=("--config.train.eval_at=(3,)",))
  c = base[0]["config"]  # no compilers_32.py: compilers.py with seq_len=32 in its ARG
  assert base[0]["source"] == "experiments/compilers.py" and c.exec.head_chunk == 32
  assert (c.train.seq_len, c.train.steps, c.train.eval_at) == (32, 3, (3,))
  c = sweep.plan("smoke", [4], arg="steps=7", overrides=("--config.data.max_lane_steps=512",))[0][
    "config"
  ]  # smoke's get_config takes no seq_len: --config.train.seq_len=4
  assert (c.train.seq_len, c.train.steps, c.data.max_lane_steps) == (4, 7, 512)
  with pytest.raises(experiment.ExperimentError, match="--config.train.steps=many"):
    sweep.plan("smoke", [4], overrides=("--config.train.steps=many",))
  with pytest.raises(experiment.ExperimentError, match="--seq-lens sets it"):
    sweep.plan("smoke", [4], overrides=("--config.train.seq_len=8",))
  with pytest.raises(experiment.ExperimentNotFound, match="nor experiments/nope.py"):
    sweep.plan("nope", [4])
  assert (
    main(
      [
        "run",
        "--exp",
        "smoke",
        "--seq-lens",
        "4",
        "--root",
        "/nonexistent/x",
        "--config.train.nope=1",
      ]
    )
    == 2
  )  # an error line, before anything is written


def test_tiny_sweep_run_then_fit_writes_report(tmp_path):
  repo, root, out = str(tmp_path / "repo"), str(tmp_path / "sweep"), str(tmp_path / "fit")
  synthetic.make_repo(repo, n_commits=10, seed=3, lines=30, special=False)
  common = [
    f"--config.data.sources=('{repo}',)",
    f"--config.data.dir={tmp_path / 'ds'}",
    "--config.data.val_fraction=0.3",
    "--config.train.eval_every=2",
  ]
  assert (
    main(
      [
        "run",
        "--exp",
        "smoke",
        "--seq-lens",
        "2,8",
        "--root",
        root,
        "--steps",
        "4",
        "--devices",
        "0,1",
        *common,
      ]
    )
    == 0
  )  # one worker process per device
  assert (
    main(
      [
        "run",
        "--exp",
        "smoke",
        "--seq-lens",
        "4",
        "--root",
        root,
        "--steps",
        "4",
        "--config.train.eval_at=(3,)",
        "--tokens-per-step",
        "8",
        *common,
      ]
    )
    == 0
  )  # in process; runs.json merged; 8 actions per step at T=4: batch 2
  with open(os.path.join(root, "runs.json")) as f:
    plan = json.load(f)
  assert [r["seq_len"] for r in plan["runs"]] == [2, 4, 8]
  assert [r["batch_size"] for r in plan["runs"]] == [2, 2, 2]
  assert (plan["equal_tokens"], plan["tokens_per_step"]) == (True, 8)
  assert main(["fit", *sorted(glob.glob(os.path.join(root, "T*"))), "--out", out]) == 0
  for name in (
    "report.md",
    "fit.json",
    "loss_vs_step.png",
    "loss_vs_time.png",
    "loss_vs_seq_len.png",
    "alpha_vs_step.png",
    "positions.png",
  ):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "fit.json")) as f:
    result = json.load(f)
  assert [r["step"] for r in result["alpha_by_step"]] == [2, 4]  # step 3: T=4 only
  assert all(r["n"] == 3 and r["alpha_ci"] for r in result["alpha_by_step"])
  assert len(result["crossovers"]) == 3 and result["positions"]["step"] == 4
  assert "| step | n | α |" in open(os.path.join(out, "report.md")).read()
