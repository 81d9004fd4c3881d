"""The CPU-sized sweep runs end to end and writes results.json, table, plot and docs section."""

import importlib
import json
import os
import re
import subprocess
import sys

import pytest

from experiments import depth
from rcfam_jax import experiment
from rcfam_jax.research.tasks import report, sweep

FAMILIES = ("frjt", "maze", "last_write", "perm")


def test_every_run_loads_and_builds():
  for name, family, arg in depth.SWEEP + depth.OPTIONAL + depth.ABLATION:
    for preset in ("full", "cpu", "quick"):
      cfg = sweep.load_config(name, f"preset={preset}")
      task, model, run = sweep.build(cfg)
      assert cfg.name == name and model.vocab_size == task.input_size
      assert run.train_max_depth == (3 if preset == "quick" else 16)
      assert max(run.eval_depths) > run.train_max_depth  # evaluated beyond training depths
      by_path = experiment.load(f"experiments/depth/{family}.py:{arg},preset={preset}")
      assert by_path.to_dict() == cfg.to_dict()
  assert len(depth.RUNS) == len(depth.SWEEP + depth.OPTIONAL + depth.ABLATION) == 38
  with pytest.raises(ValueError, match="unknown config arg 'nope'"):
    sweep.load_config("frjt_lstm1", "preset=quick,nope=1")
  with pytest.raises(experiment.ExperimentNotFound, match="unknown depth run 'frjt_rnn1'"):
    sweep.load_config("frjt_rnn1", "preset=quick")


def test_every_run_has_a_fixed_length_protocol():
  """protocol=fixed: one row length L per run that holds the deepest eval depth, at least the
  variable protocol's row at depth 64 (full, cpu), evaluated to 2x the training depths and more."""
  for name, family, arg in depth.SWEEP + depth.OPTIONAL:
    for preset in ("full", "cpu", "quick"):
      cfg = sweep.load_config(name, f"preset={preset},protocol=fixed")
      task, model, run = sweep.build(cfg)
      variable = sweep.build(sweep.load_config(name, f"preset={preset}"))[0]
      assert cfg.protocol == "fixed" and variable.fixed_len is None
      assert task.fixed_len == task.seq_len(max(run.eval_depths)) == task.seq_len(1)
      assert task.fixed_len == variable.seq_len(max(run.eval_depths))  # the default L
      assert max(run.eval_depths) >= 2 * run.train_max_depth
      if preset != "quick":
        assert max(run.eval_depths) >= 64 and task.fixed_len >= variable.seq_len(64)
      assert model.vocab_size == task.input_size
      by_path = experiment.load(
        f"experiments/depth/{family}.py:{arg},preset={preset},protocol=fixed"
      )
      assert by_path.to_dict() == cfg.to_dict()
  full = sweep.build(sweep.load_config("perm_lstm1", "preset=full,protocol=fixed"))
  assert full[0].fixed_len == 128 and full[2].eval_depths[-3:] == (64, 96, 128)
  short = sweep.load_config("perm_lstm1", "preset=full,protocol=fixed,length=200")
  assert sweep.build(short)[0].fixed_len == 200
  assert sweep.load_config("perm_lstm1", "preset=full").protocol == "variable"


def test_family_docstrings_list_every_run_with_its_arg():
  for name, family, arg in depth.SWEEP + depth.OPTIONAL:
    doc = importlib.import_module(f"experiments.depth.{family}").__doc__
    assert re.search(rf"^  {name} +{re.escape(arg)} +\d", doc, re.M), name


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("model", ["lstm", "transformer", "mamba"])
def test_each_family_loads_every_model(family, model):
  cfg = experiment.load(f"experiments.depth.{family}:model={model},layers=2,preset=quick")
  task, built, run = sweep.build(cfg)
  assert (cfg.name, cfg.label) == (f"{family}_{model}2", family)
  assert (built.kind, built.layers, run.steps) == (model, 2, 3)
  assert cfg.task.name == family and built.output_size == task.output_size


def test_frjt_jump_picks_the_label():
  default = experiment.load("experiments/depth/frjt.py:model=mamba,layers=8")
  long = experiment.load("experiments/depth/frjt.py:jump=16,model=mamba,layers=8")
  assert (default.name, default.label, default.task.max_jump) == ("frjt_mamba8", "frjt", 4)
  assert (long.name, long.label, long.task.max_jump) == ("frjt16_mamba8", "frjt16", 16)
  assert experiment.load("experiments.depth.maze").name == "maze_lstm1"  # defaults: lstm, 1


@pytest.mark.parametrize(
  "family, arg, message",
  [
    ("frjt", "model=rnn", "config arg model='rnn' is not one of lstm|transformer|mamba"),
    (
      "maze",
      "model=Transformer",
      "config arg model='Transformer' is not one of lstm|transformer|mamba",
    ),
    ("frjt", "jump=8", "config arg jump=8 is not one of 4|16"),
    ("perm", "preset=huge", "config arg preset='huge' is not one of full|cpu|quick"),
    ("last_write", "layers=0", "config arg layers=0 must be >= 1"),
    ("last_write", "layers=two", "config arg layers='two': expected int"),
    ("maze", "jump=16", "unknown config arg 'jump'"),
    ("perm", "protocol=fix", "config arg protocol='fix' is not one of variable|fixed"),
    ("maze", "model=transformer,pos=sine", "config arg pos='sine' is not one of rope|none|alibi"),
    ("maze", "model=mamba,pos=alibi", "config arg pos=alibi is the Transformer's; model=mamba"),
    ("maze", "length=200", "config arg length=200 needs protocol=fixed"),
    (
      "frjt",
      "protocol=fixed,length=300",
      "config arg length=300: frjt: fixed_len=300 holds depths up to 75, not 128",
    ),
  ],
)
def test_bad_arg_names_the_field_and_valid_values(family, arg, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    importlib.import_module(f"experiments.depth.{family}").get_config(arg)
  with pytest.raises(
    experiment.ExperimentError, match=re.escape(f"get_config failed: ValueError: {message}")
  ):
    experiment.load(f"experiments.depth.{family}:{arg}")


def test_config_overrides_as_main(tmp_path, capsys):
  """--config.run.steps=... as rcfam_jax.main takes them (config_flags); a bad one is named."""
  cfg = sweep.load_config(
    "maze_lstm1", "preset=quick", ["--config.run.steps=2", "--config.run.eval_depths=(1,)"]
  )
  assert (sweep.build(cfg)[2].steps, sweep.build(cfg)[2].eval_depths) == (2, (1,))
  with pytest.raises(SystemExit):  # before any training or output
    sweep.main(["--quick", "--only=frjt_lstm1", "--config.run.nope=1", f"--out={tmp_path}/o"])
  assert "run has no field 'nope'" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "o")


def test_full_preset_is_one_sweep_with_per_task_budgets():
  names = {name for name, _, _ in depth.SWEEP}
  assert {"frjt16_lstm1", "frjt16_transformer8", "frjt16_mamba8"} <= names
  assert not names & {name for name, _, _ in depth.OPTIONAL}
  runs = {n: sweep.build(sweep.load_config(n, "preset=full")) for n in names}
  _, lstm, maze_run = runs["maze_lstm1"]
  assert lstm.d_model == 256 and maze_run.batch == 256 and maze_run.steps >= 20000
  assert runs["maze_mamba8"][1].d_model == 128 and runs["frjt_lstm1"][1].d_model == 128
  assert runs["frjt16_lstm1"][0].max_jump == 16 and runs["frjt16_lstm1"][2].steps == 3000
  over = sweep.build(sweep.load_config("maze_lstm1", "preset=full,steps=7,batch=3"))[2]
  assert (over.steps, over.batch) == (7, 3)
  assert depth.spec("frjt16_mamba8", "preset=cpu") == (
    "experiments.depth.frjt:jump=16,model=mamba,layers=8,preset=cpu"
  )


@pytest.mark.parametrize(
  "argv, error",
  [
    (["--only=frjt16_lstm1,frjt_rnn1"], "unknown run(s) ['frjt_rnn1']"),
    (
      ["--only=frjt16_lstm1", "--arg=model=mamba"],
      "this is run 'frjt16_mamba1', not 'frjt16_lstm1'; choose runs with --only",
    ),
    (["--only=maze_lstm1", "--arg=jump=16"], "unknown config arg 'jump'"),
    (
      ["--only=perm_lstm1", "--protocol=fixed", "--config.task.fixed_len=4"],
      "perm_lstm1: perm: fixed_len=4 holds depths up to 4, not 6",
    ),
  ],
)
def test_only_takes_run_names_before_any_training(tmp_path, capsys, argv, error):
  with pytest.raises(SystemExit):
    sweep.main(["--quick", *argv, f"--out={tmp_path}/o"])
  assert error in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "o")


def test_quick_sweep_end_to_end(tmp_path):
  docs = tmp_path / "docs" / "DEPTH.md"
  docs.parent.mkdir()
  docs.write_text(
    "# hand-written\n\n<!-- BEGIN results:quick -->\nold\n"
    "<!-- END results:quick -->\n<!-- BEGIN results:full -->\npending\n"
    "<!-- END results:full -->\n"
  )
  out = tmp_path / "out"
  sweep.main(["--quick", "--only=frjt16_lstm1,frjt_transformer1", f"--out={out}", f"--docs={docs}"])
  results = json.loads((out / "results.json").read_text())
  assert list(results["runs"]) == ["frjt16_lstm1", "frjt_transformer1"]
  lstm, transformer = results["runs"].values()
  assert (lstm["label"], lstm["task"]["max_jump"], lstm["model"]["kind"]) == ("frjt16", 16, "lstm")
  assert (transformer["label"], transformer["task"]["max_jump"]) == ("frjt", 4)
  for r in results["runs"].values():
    assert set(r["eval"]) == {"1", "3", "5"}
    assert all(0 <= m["acc"] <= 1 and 0 <= m["final_acc"] <= 1 for m in r["eval"].values())
    assert r["params"] > 0 and r["history"][-1]["step"] == 3
  assert (out / "accuracy_vs_depth.png").stat().st_size > 1000
  assert "| lstm L=1 |" in (out / "table.md").read_text()
  text = docs.read_text()
  assert text.startswith("# hand-written") and "old" not in text and "pending" in text
  assert "Forward-Referencing Jumps (max jump 16)" in text and "DEPTH_quick.png" in text
  assert "Cliff against layers" not in text  # one Transformer layer count: no such table
  assert os.path.exists(docs.parent / "DEPTH_quick.png")


def test_quick_fixed_sweep_has_its_own_docs_section(tmp_path, capsys):
  docs = tmp_path / "DEPTH.md"
  docs.write_text("# x\n\n<!-- BEGIN results:quick -->\nvariable\n<!-- END results:quick -->\n")
  out = tmp_path / "out"
  sweep.main(["--quick", "--protocol=fixed", "--only=perm_lstm1", f"--out={out}", f"--docs={docs}"])
  results = json.loads((out / "results.json").read_text())
  assert results["meta"]["protocol"] == "fixed" and results["meta"]["section"] == "quick_fixed"
  run = results["runs"]["perm_lstm1"]
  assert run["task"]["fixed_len"] == 6 and set(run["eval"]) == {"1", "3", "6"}
  text = docs.read_text()
  assert "variable" in text and "<!-- BEGIN results:quick_fixed -->" in text  # both sections
  assert "S3 composition (never synchronises), fixed length L=6" in text
  assert "fixed-length protocol" in text
  with pytest.raises(SystemExit):
    sweep.main(["--quick", "--protocol=fixed", "--arg=protocol=variable", f"--out={out}"])
  assert "contradicts" in capsys.readouterr().err


def test_update_docs_appends_new_section(tmp_path):
  path = tmp_path / "d.md"
  path.write_text("# x\n")
  report.update_docs(str(path), "cpu", "body one")
  report.update_docs(str(path), "cpu", "body two")
  text = path.read_text()
  assert text.count("BEGIN results:cpu") == 1 and "body two" in text and "body one" not in text


def test_position_ablation_runs_reach_the_transformer():
  """ABLATION's runs carry their position encoding into the baseline's ModelConfig, under their
  own names (results of different encodings never share a name)."""
  for name, _, _ in depth.ABLATION:
    _, model, _ = sweep.build(sweep.load_config(name, "preset=quick"))
    want = name.rsplit("_", 1)[1] if name.endswith(("_none", "_alibi")) else "rope"
    assert model.pos_encoding == want, name
  names = [n for n, _, _ in depth.SWEEP + depth.OPTIONAL + depth.ABLATION]
  assert len(names) == len(set(names))


def test_jobs_run_configs_in_worker_processes_with_the_same_results(tmp_path):
  """--jobs 2: each config in its own process, two at a time; the results (in run order) equal
  those of the runs one after another in this process."""
  runs = "--only=perm_lstm1,perm_transformer1"
  sweep.main(["--quick", "--protocol=fixed", runs, f"--out={tmp_path}/seq"])
  cli = [sys.executable, "-m", "rcfam_jax.research.tasks.sweep"]  # as `make` runs it
  out = subprocess.run(
    [*cli, "--quick", "--protocol=fixed", runs, "--jobs=2", f"--out={tmp_path}/par"],
    check=True,
    capture_output=True,
    text=True,
  ).stdout
  assert "  perm_lstm1 step 3/3" in out and "  perm_transformer1: params" in out  # workers' lines
  seq, par = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("seq", "par"))
  assert list(par["runs"]) == ["perm_lstm1", "perm_transformer1"] and par["meta"]["jobs"] == 2
  for name, run in seq["runs"].items():
    assert par["runs"][name]["eval"] == run["eval"], name
    assert run["step_ms"] > 0 and par["runs"][name]["step_ms"] > 0
  assert not os.path.exists(tmp_path / "par" / "runs.tmp")
  assert (tmp_path / "par" / "table.md").exists()


def test_fixed_sweep_leaves_out_variable_only_runs_unless_named():
  fixed = sweep.select("", True, True, fixed=True)
  assert not set(fixed) & set(depth.VARIABLE_ONLY) and len(fixed) == 38 - 3
  assert set(depth.VARIABLE_ONLY) <= set(sweep.select("", False, False, fixed=False))
  assert sweep.select("frjt16_lstm1", False, False, fixed=True) == ["frjt16_lstm1"]
  assert "last_write_transformer8" in sweep.select("", False, True, fixed=True)


def test_resume_keeps_finished_runs_and_refuses_other_configs(tmp_path, capsys):
  out, docs = tmp_path / "out", tmp_path / "D.md"
  base = ["--quick", "--protocol=fixed", f"--out={out}", f"--docs={docs}"]
  sweep.main([*base, "--only=perm_lstm1"])
  first = json.loads((out / "results.json").read_text())
  sweep.main([*base, "--only=perm_lstm1,perm_transformer1", "--resume"])
  both = json.loads((out / "results.json").read_text())
  assert list(both["runs"]) == ["perm_lstm1", "perm_transformer1"]
  assert both["runs"]["perm_lstm1"] == first["runs"]["perm_lstm1"]  # kept, not retrained
  assert both["meta"]["parts"] == 2 and len(both["meta"]["commands"]) == 2
  assert both["meta"]["total_s"] > first["meta"]["total_s"]
  assert "over 2 invocations (--resume)" in docs.read_text()
  with pytest.raises(SystemExit):
    sweep.main([*base, "--only=perm_lstm1", "--resume", "--arg=steps=2"])
  err = capsys.readouterr().err
  assert "--resume: " in err and "ran perm_lstm1 with run" in err and "choose another --out" in err


def test_stop_after_starts_no_run_past_it_and_resume_runs_the_rest(tmp_path, capsys):
  out = tmp_path / "out"
  base = ["--quick", "--protocol=fixed", "--only=perm_lstm1,perm_transformer1", f"--out={out}"]
  sweep.main([*base, "--stop-after=0"])
  assert "2 run(s) not started (perm_lstm1, perm_transformer1)" in capsys.readouterr().out
  assert not (out / "results.json").exists()
  sweep.main([*base, "--only=perm_lstm1"])  # one finished run to keep
  sweep.main([*base, "--resume", "--jobs=2", "--stop-after=1e6"])
  runs = json.loads((out / "results.json").read_text())["runs"]
  assert list(runs) == ["perm_lstm1", "perm_transformer1"]


def test_fixed_full_budgets_and_dtypes():
  """The fixed protocol's `full` budgets (base.FIXED) on top of FULL; the Transformer in
  bfloat16 there only; the costliest run first for --jobs."""
  load = lambda n, p: sweep.load_config(n, f"preset=full,protocol={p}")
  steps = lambda n, p: load(n, p).run.steps
  assert [steps("maze_lstm1", p) for p in ("variable", "fixed")] == [50000, 15000]
  assert [steps("maze_transformer1", p) for p in ("variable", "fixed")] == [5000, 2500]
  assert [steps("frjt_mamba8", p) for p in ("variable", "fixed")] == [3000, 2000]
  assert steps("last_write_lstm1", "fixed") == 1000
  dtypes = {n: load(n, "fixed").model.compute_dtype for n in ("frjt_transformer8", "maze_lstm1")}
  assert dtypes == {"frjt_transformer8": "bfloat16", "maze_lstm1": "float32"}
  assert load("frjt_transformer8", "variable").model.compute_dtype == "float32"
  assert sweep.load_config(
    "perm_transformer8", "preset=cpu,protocol=fixed"
  ).model.compute_dtype == ("float32")
  costs = {n: sweep.cost(load(n, "fixed")) for n in ("frjt_mamba8", "frjt_mamba1", "perm_lstm1")}
  assert costs["frjt_mamba8"] == 8 * costs["frjt_mamba1"] > costs["perm_lstm1"]
