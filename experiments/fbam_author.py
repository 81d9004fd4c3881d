"""The author's run configuration (fbamtrain `working_dir/run-configs/debug.json`), exactly.

Model: 48x160 frames, d=1024, 3 attention blocks of 8 heads with biases, 2 dilated downsample
blocks, last-position reduction, one LSTM layer of 1024 with two bias vectors, 20,352 actions
(the author's 20,351 tokens padded): 94,030,848 parameters. Optimizer: Muon for every matrix,
AdamW for the rest, both at 2e-3, Muon momentum 0, weight decay 0.01, betas 0.9 / 0.999, eps 1e-8,
constant rate, no warm-up, no clipping. Batch 32 x 1,024 actions; every window starts from the
learned (h0, c0) (fresh windows, train.carry_state=False). docs/FIDELITY.md lists what still
differs (data, precision, Muon's float32 Newton-Schulz).

Data: the author trains on his terminal recordings; here the compilers corpus of
experiments/compilers.py replayed at 48x160 with a learned vocabulary of up to 20,352 tokens.

Command: make train EXP=fbam_author
  CPU check with a tiny dataset: python -m rcfam_jax.main --config experiments/fbam_author.py
  --workdir W --config.data.sources='("self",)' --config.data.dir=data/self_48x160
  --config.data.val_sources='()' --config.data.val_fraction=0.2 --config.train.steps=2
  --config.train.batch_size=1 --config.train.seq_len=2 --config.train.eval_seq_len=2
  --config.train.eval_batch_size=1 --config.train.eval_batches=1 --config.exec.head_chunk=2
Hardware: one NVIDIA H200 (a step of 32,768 frames); the CPU check above runs on 2 cores.
Expected: the log reports `model: 94,030,848 parameters; fresh (from the learned h0, c0)
  windows`. One H200 (2026-12-01, chibicc at 48x160, docs/RESULTS.md section 4): 453 frames/s,
  72 s per step, 70.6 GiB peak, with cuDNN's dilated conv (the default then; the defaults of
  2026-12-02 ran 648 frames/s at B=8, T=64 and 650 at T=1,024 on random cells, carried state, in
  docs/BENCHMARKS.md; not re-run at B=32);
  train loss 9.93 -> 9.78 over the first 3 steps. The CPU check above has no recorded figure in
  docs/.
"""

from experiments import common, compilers

VOCAB = 20_352


def get_config(arg=None):
  a = common.parse_arg(arg, steps=100_000, batch=32, seq_len=1024)
  return common.base_config(
    description="the author's debug.json configuration",
    model=dict(
      rows=48,
      cols=160,
      d_model=1024,
      n_layer=3,
      n_head=8,
      mlp_ratio=4,
      downsample_blocks=2,
      downsample_mode="dilated",
      attention_bias=True,
      reduction="last_pos",
      lstm_hidden=1024,
      lstm_layers=1,
      lstm_biases=2,
      n_codepoints=256,
      rms_eps=1e-5,
      vocab_size=VOCAB,
      compute_dtype="bfloat16",
    ),
    # 256 frames of 48x160 per frame-head call.
    exec_=dict(head_chunk=8, loss_chunk=128),
    optim_=dict(
      name="muon",
      lr=2e-3,
      muon_lr=2e-3,
      muon_momentum=0.0,
      muon_nesterov=False,
      weight_decay=0.01,
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      schedule="constant",
      warmup_steps=0,
      clip_norm=0.0,
    ),
    train_=dict(
      steps=a["steps"],
      batch_size=a["batch"],
      seq_len=a["seq_len"],
      carry_state=False,
      log_every=10,
      eval_every=1000,
      eval_batches=4,
      eval_seq_len=1024,
      eval_batch_size=32,
      ckpt_every=1000,
      position_buckets=4,
    ),
    data_=dict(
      dir="data/compilers_48x160",
      sources=compilers.TRAIN_SOURCES + compilers.VAL_SOURCES,
      val_sources=compilers.VAL_SOURCES,
      max_keys_per_commit=100_000,
      max_lane_steps=8192,
      tokenizer_size=VOCAB,
    ),
  )
