"""The cliff against layers: the interpolated crossing and the power law fitted to it."""

import json
import math
import pathlib

import pytest

from rcfam_jax.research.tasks import cliffs, report


def ev(**accs):
  return {d.lstrip("d"): {"final_acc": a, "acc": a} for d, a in accs.items()}


def test_crossing_interpolates_in_log_depth():
  x, text = cliffs.crossing(ev(d1=1.0, d2=0.98, d4=0.95, d8=0.85, d16=0.3))
  assert x == pytest.approx(2 ** (2 + 0.05 / 0.10)) and text == "5.7"  # halfway from 4 to 8
  assert cliffs.crossing(ev(d4=0.9, d8=0.5))[0] == pytest.approx(4.0)  # at the threshold: kept
  assert cliffs.crossing(ev(d1=0.95, d2=0.97, d4=0.91)) == (None, ">4")
  assert cliffs.crossing(ev(d1=0.6, d2=0.95)) == (None, "<1")
  # the first crossing counts, as for the grid cliff, even if a deeper depth recovers
  assert cliffs.crossing(ev(d1=1.0, d2=0.8, d4=0.95))[1] == f"{2 ** (0.1 / 0.2):.1f}"


def run(kind, layers, accs, pos="rope"):
  return {
    "label": "maze",
    "task": {"name": "maze"},
    "model": {"kind": kind, "layers": layers, "pos_encoding": pos},
    "run": {"cliff_threshold": 0.9},
    "params": 1000 * layers,
    "cliff_depth": 8,
    "eval": ev(**accs),
  }


def test_layer_fits_recover_a_power_law_and_skip_other_runs():
  """Crossings 1, 2, 4, 8 at 1, 2, 4, 8 layers: exponent 1, A = 1; the ALiBi run, the LSTM
  and a kind with one layer count are left out of the fits."""
  runs = {
    f"t{n}": run("transformer", n, {"d1": 1.0, f"d{n}": 0.9, f"d{2 * n}": 0.1})
    for n in (1, 2, 4, 8)
  }
  runs["t8_alibi"] = run("transformer", 8, {"d1": 0.5}, pos="alibi")
  runs["lstm"] = run("lstm", 1, {"d1": 1.0})
  runs["m8"] = run("mamba", 8, {"d1": 1.0})
  (f,) = cliffs.layer_fits({"runs": runs})
  assert (f["task"], f["kind"]) == ("maze", "transformer") and len(f["rows"]) == 4
  assert f["fit"]["b"] == pytest.approx(1.0) and f["fit"]["A"] == pytest.approx(1.0)
  assert f["fit"]["n"] == 4 and f["fit"]["r2"] == pytest.approx(1.0)
  text = cliffs.table({"runs": runs})
  assert "| maze | transformer | 4 | 4,000 | n/a | 8 | 4.0 |" in text
  assert "crossing = 1.00 x layers^1.00" in text


def test_a_fit_needs_two_layer_counts_with_a_crossing():
  runs = {
    "a": run("mamba", 1, {"d1": 0.5}),  # below at depth 1: no crossing
    "b": run("mamba", 2, {"d1": 1.0, "d2": 0.8}),
  }
  (f,) = cliffs.layer_fits({"runs": runs})
  assert f["fit"] is None and [t for *_, t in f["rows"]] == ["<1", f"{2**0.5:.1f}"]
  assert "no fit" in cliffs.table({"runs": runs})
  assert math.isclose(f["rows"][1][2], 2**0.5)


def test_docs_fixed_section_is_the_committed_results_rendered():
  """docs/DEPTH_BENCHMARK.md's fixed-protocol section is what the sweep renders from the
  committed results.json, and the fits quoted in its prose are those of that file."""
  docs = pathlib.Path(__file__).resolve().parents[1] / "docs"
  results = json.loads((docs / "depth_h200_fixed" / "results.json").read_text())
  body = report.section(results, "DEPTH_BENCHMARK_full_fixed.png").rstrip()
  text = (docs / "DEPTH_BENCHMARK.md").read_text()
  assert f"<!-- BEGIN results:full_fixed -->\n{body}\n<!-- END results:full_fixed -->" in text
  fits = {(f["task"], f["kind"]): f["fit"] for f in cliffs.layer_fits(results)}
  quoted = {("maze", "transformer"): 0.92, ("perm", "transformer"): 0.62, ("perm", "mamba"): 0.39}
  for key, b in quoted.items():
    assert round(fits[key]["b"], 2) == b, key
    assert f"exponent {b:.2f}" in text or f"L^{b:.2f}" in text, key
