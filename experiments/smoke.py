"""Smoke: the tiny configuration the tests use; seconds on a CPU.

Command: make train EXP=smoke WORKDIR=/tmp/smoke
Data: this repository's own history ('self'); pass --config.data.sources='("PATH",)' for another.
Expected: runs to completion (fresh windows: train.carry_state=False). No figure for its default
12 steps is recorded in docs/; tests/loop_test.py trains it 30 steps on a synthetic repository and
checks that the last train loss is below 0.8x the first.
"""

from experiments import common


def get_config(arg=None):
  a = common.parse_arg(arg, steps=12, dir="data/self_smoke_8x16")
  return common.base_config(
    description="tiny smoke run",
    model=dict(
      rows=8,
      cols=16,
      d_model=16,
      n_layer=1,
      n_head=2,
      downsample_blocks=1,
      lstm_hidden=16,
      vocab_size=128,
      compute_dtype="float32",
    ),
    exec_=dict(head_chunk=4, loss_chunk=8, lstm_unroll=1),
    optim_=dict(name="adamw", lr=3e-3, warmup_steps=2),
    train_=dict(
      steps=a["steps"],
      batch_size=2,
      seq_len=8,
      carry_state=False,
      log_every=2,
      eval_every=6,
      eval_batches=1,
      eval_seq_len=8,
      eval_batch_size=2,
      ckpt_every=4,
      position_buckets=2,
    ),
    data_=dict(dir=a["dir"], sources=("self",), window=64, max_keys_per_commit=1_000_000),
  )
