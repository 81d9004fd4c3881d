"""Experiment files: the author's configuration, and every experiment names its window regime."""

import pathlib

import jax
import pytest

from experiments import fbam_author
from rcfam_jax import experiment, model, optim

ROOT = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def test_fbam_author_has_the_authors_parameter_count():
  exp = experiment.parse_config(fbam_author.get_config())
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), exp.model))
  assert model.n_params(params) == 94_030_848
  assert (exp.model.rows, exp.model.cols, exp.model.vocab_size) == (48, 160, 20_352)
  assert (exp.train.batch_size, exp.train.seq_len, exp.train.carry_state) == (32, 1024, False)
  # The optimizer builds on it, with Muon for the matrices: the two LSTM biases go to AdamW.
  dims = optim.muon_dims(params)["lstm"]["layers"][0]
  assert dims["b"] is None and dims["b_h"] is None and dims["w_h"] == optim.DENSE
  tx = optim.make(exp.optim, exp.train.steps)
  jax.eval_shape(tx.init, params)


@pytest.mark.parametrize(
  "path", sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "common.py"))
)
def test_every_training_experiment_names_its_window_regime(path):
  text = (ROOT / path).read_text()
  assert "carry_state" in text or "compilers.get_config" in text, path
