"""The CPU-sized sweep runs end to end and writes results.json, table, plot and docs section."""
import json
import os

import pytest

from experiments import depth
from rcfam_jax.tasks import report, sweep


def test_every_config_loads_and_builds():
  for name in depth.SWEEP + depth.OPTIONAL:
    for preset in ("full", "cpu", "quick"):
      cfg = sweep.load_config(name, f"preset={preset}")
      task, model, run = sweep.build(cfg)
      assert cfg.name == name and model.vocab_size == task.input_size
      assert run.train_max_depth == (3 if preset == "quick" else 16)
      assert max(run.eval_depths) > run.train_max_depth  # evaluated beyond training depths
  with pytest.raises(ValueError):
    sweep.load_config("frjt_lstm1", "preset=quick,nope=1")


def test_config_overrides_as_main(tmp_path, capsys):
  """--config.run.steps=... as rcfam_jax.main takes them (config_flags); a bad one is named."""
  cfg = sweep.load_config("maze_lstm1", "preset=quick",
                          ["--config.run.steps=2", "--config.run.eval_depths=(1,)"])
  assert (sweep.build(cfg)[2].steps, sweep.build(cfg)[2].eval_depths) == (2, (1,))
  with pytest.raises(SystemExit):  # before any training or output
    sweep.main(["--quick", "--only=frjt_lstm1", "--config.run.nope=1", f"--out={tmp_path}/o"])
  assert "run has no field 'nope'" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "o")


def test_full_preset_is_one_sweep_with_per_task_budgets():
  names = set(depth.SWEEP)
  assert {"frjt16_lstm1", "frjt16_transformer8", "frjt16_mamba8"} <= names
  assert not names & set(depth.OPTIONAL)
  runs = {n: sweep.build(sweep.load_config(n, "preset=full")) for n in depth.SWEEP}
  _, lstm, maze_run = runs["maze_lstm1"]
  assert lstm.d_model == 256 and maze_run.batch == 256 and maze_run.steps >= 20000
  assert runs["maze_mamba8"][1].d_model == 128 and runs["frjt_lstm1"][1].d_model == 128
  assert runs["frjt16_lstm1"][0].max_jump == 16 and runs["frjt16_lstm1"][2].steps == 3000
  over = sweep.build(sweep.load_config("maze_lstm1", "preset=full,steps=7,batch=3"))[2]
  assert (over.steps, over.batch) == (7, 3)


def test_quick_sweep_end_to_end(tmp_path):
  docs = tmp_path / "docs" / "DEPTH.md"
  docs.parent.mkdir()
  docs.write_text("# hand-written\n\n<!-- BEGIN results:quick -->\nold\n"
                  "<!-- END results:quick -->\n<!-- BEGIN results:full -->\npending\n"
                  "<!-- END results:full -->\n")
  out = tmp_path / "out"
  sweep.main(["--quick", "--only=frjt_lstm1,frjt_transformer1", f"--out={out}", f"--docs={docs}"])
  results = json.loads((out / "results.json").read_text())
  assert list(results["runs"]) == ["frjt_lstm1", "frjt_transformer1"]
  for r in results["runs"].values():
    assert set(r["eval"]) == {"1", "3", "5"}
    assert all(0 <= m["acc"] <= 1 and 0 <= m["final_acc"] <= 1 for m in r["eval"].values())
    assert r["params"] > 0 and r["history"][-1]["step"] == 3
  assert (out / "accuracy_vs_depth.png").stat().st_size > 1000
  assert "| lstm L=1 |" in (out / "table.md").read_text()
  text = docs.read_text()
  assert text.startswith("# hand-written") and "old" not in text and "pending" in text
  assert "Forward-Referencing Jumps" in text and "DEPTH_quick.png" in text
  assert "| Transformer L |" in text  # the input-length proportionality table
  assert os.path.exists(docs.parent / "DEPTH_quick.png")


def test_update_docs_appends_new_section(tmp_path):
  path = tmp_path / "d.md"
  path.write_text("# x\n")
  report.update_docs(str(path), "cpu", "body one")
  report.update_docs(str(path), "cpu", "body two")
  text = path.read_text()
  assert text.count("BEGIN results:cpu") == 1 and "body two" in text and "body one" not in text
