"""The direction of the depth claim at CPU size, on fixed-length S3 rows (depth, not length).

A 1-layer LSTM and a 1-layer Transformer are trained the same way (rcfam_jax.research.tasks.fit;
same task, rows, steps, batch and seed; each model's benchmark learning rate) on S3
composition with every row L = 24 tokens, at depths 1..8 (2000 steps x 32 rows, d_model 48),
and evaluated at depth 16 in rows of the same length. The LSTM keeps >= 90% last-step accuracy
there; the Transformer does not. The sizes hold both on every seed tried: the LSTM well above
90% at depth 16, the Transformer near chance (1/6) at depth 16 and at the training depth 8
alike. One attention layer does not fit S3 at this size even inside the training range, so
this test guards the direction (LSTM above, Transformer-1 below), not a cliff at the edge of
the training range.
"""

import pytest

from experiments.depth.base import LR
from rcfam_jax.research import baselines, tasks
from rcfam_jax.research.tasks import fit

# 2000 training steps: running, not compiling, is this file's time (conftest).
pytestmark = pytest.mark.usefixtures("full_optimization")
TASK = tasks.Permutations(n=3, fixed_len=24)
TRAIN_DEPTH, EVAL_DEPTH = 8, 16


def train(kind: str, seed: int = 0, steps: int = 2000, d_model: int = 48):
  """{depth: {'acc', 'final_acc'}} at the training depth and twice it."""
  model = baselines.ModelConfig(
    kind=kind,
    vocab_size=TASK.input_size,
    output_size=TASK.output_size,
    d_model=d_model,
    layers=1,
    n_head=4,
  )
  run = fit.RunConfig(
    steps=steps,
    batch=32,
    lr=LR[kind],
    warmup=100,
    train_max_depth=TRAIN_DEPTH,
    eval_depths=(TRAIN_DEPTH, EVAL_DEPTH),
    eval_per_depth=256,
    eval_batch=256,
    seed=seed,
    log_every=10**9,
  )
  return fit.fit(TASK, model, run, log=lambda _: None)["eval"]


def test_lstm_keeps_its_accuracy_at_twice_the_training_depth():
  ev = train("lstm")
  assert ev[TRAIN_DEPTH]["final_acc"] >= 0.95, ev
  assert ev[EVAL_DEPTH]["final_acc"] >= 0.9, ev


def test_one_layer_transformer_does_not():
  ev = train("transformer")
  assert ev[EVAL_DEPTH]["final_acc"] < 0.9, ev
