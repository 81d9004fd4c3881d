"""Demo: a small FBAM trained on this repository's own Git history, on a CPU.

Command: make train            (= make train EXP=demo WORKDIR=workdirs/demo)
Hardware: any CPU; no network (the data is built from this clone's history on first use).
Expected (2-core CPU, carried state, docs/RESULTS.md section 1): 2026-11-28, 12 min 4 s
  including the dataset build, ~110 frames/s, train loss 4.63 (step 10) -> 3.33 (step 150),
  held-out loss 3.67 (step 50) -> 3.61 (step 150); re-run 2026-12-01 (commit 5dfb9df, the VM
  shared with other jobs), 16 min 34 s, 64-109 frames/s, train loss 4.66 (step 10) -> 3.69 (step
  150), held-out loss 3.88 (step 50) -> 3.61 (step 150). The data is this repository's history,
  so the losses move a little with every commit.
"""

from experiments import common


def get_config(arg=None):
  a = common.parse_arg(arg, steps=150, seq_len=64, batch=8)
  return common.base_config(
    description="small model on this repository's history (CPU demo)",
    model=dict(
      rows=24,
      cols=80,
      d_model=32,
      n_layer=1,
      n_head=2,
      downsample_blocks=2,
      lstm_hidden=64,
      vocab_size=128,
      compute_dtype="float32",
    ),
    exec_=dict(head_chunk=16, loss_chunk=64, lstm_unroll=4),
    optim_=dict(name="adamw", lr=3e-3, warmup_steps=20, schedule="cosine"),
    # Carried state (truncated BPTT), as its Expected figures were measured.
    train_=dict(
      steps=a["steps"],
      batch_size=a["batch"],
      seq_len=a["seq_len"],
      carry_state=True,
      log_every=10,
      eval_every=50,
      eval_batches=2,
      eval_seq_len=128,
      eval_batch_size=8,
      ckpt_every=50,
      position_buckets=4,
    ),
    # Lanes walk pieces of at most 2048 steps, so the 8 lanes see different parts of the
    # history even though its few huge commits make only a couple of segments.
    data_=dict(
      dir="data/self_24x80",
      sources=("self",),
      val_fraction=0.2,
      max_keys_per_commit=1_000_000,
      max_lane_steps=2048,
    ),
  )
