"""Compilers corpus: one FBAM trained at sequence length T on public compiler repositories.

The same model and optimizer in every `compilers_<T>.py`; only the trained sequence length
differs (the scaling study of docs/SCALING.md). Whole repositories (c4, lcc) are held out.

Command: make data EXP=compilers_512 && make train EXP=compilers_512
  (sources are Git URLs cloned into .cache/repos when the network allows; without network, clone
  them elsewhere and pass local paths: ARGS='--config.data.sources=("/src/chibicc","/src/8cc")')
Hardware: one NVIDIA H200 (the frame head is ~99.9% of the FLOPs).
  Budgeted variant: get_config arg `minutes=N` (e.g. `experiments/compilers_512.py:minutes=21,
  batch=8`), as run for docs/RESULTS.md section 3 and docs/SCALING.md.
Expected (H200, 2026-11-28, 71.5 M parameters, batch 8, carried state): 1,403-1,570 frames/s
  (median) at T = 16..2048; compilers_512 reached held-out validation loss 5.08 at step 411
  (21-min budget, 1,127 s of training steps); see compilers_<T>.py and docs/SCALING.md.
  Losses were measured with the Muon scale of that date, transposed against the author's
  (docs/RESULTS.md); the current rule gives other losses. Frames/s were measured with the
  execution settings of that date (cuDNN's dilated conv, head_chunk 64); the defaults since
  2026-12-01 (parity conv, head_chunk 32; the head's changes of 2026-12-02) were not measured on
  this model.
"""

from experiments import common

TRAIN_SOURCES = (
  "https://github.com/rui314/chibicc",
  "https://github.com/rui314/8cc",
  "https://github.com/michaelforney/cproc",
  "https://github.com/8l/qbe",
  "https://github.com/TinyCC/tinycc",
)
VAL_SOURCES = ("https://github.com/rswier/c4", "https://github.com/drh/lcc")
EVAL_AT = (
  8,
  16,
  32,
  64,
  96,
  128,
  192,
  256,
  384,
  512,
  768,
  1024,
  1536,
  2048,
  3072,
  4096,
  6144,
  8192,
)


def get_config(arg=None, *, seq_len: int = 512):
  a = common.parse_arg(arg, steps=20_000, batch=16, seq_len=seq_len, muon=True, minutes=0.0)
  c = common.base_config(
    description=f"compilers corpus, trained sequence length {a['seq_len']}",
    # The author's frame head and LSTM (docs/FIDELITY.md) at 24x80 frames: 88 M parameters
    # with the author's 20,352-token vocabulary, here 4,096 learned action tokens.
    model=dict(
      rows=24,
      cols=80,
      d_model=1024,
      n_layer=3,
      n_head=8,
      downsample_blocks=2,
      lstm_hidden=1024,
      lstm_layers=1,
      vocab_size=4096,
      compute_dtype="bfloat16",
    ),
    exec_=dict(head_chunk=max(1, min(32, a["seq_len"])), loss_chunk=128),
    optim_=dict(
      name="muon" if a["muon"] else "adamw",
      lr=3e-4,
      muon_lr=2e-3,
      schedule="cosine",
      warmup_steps=500,
    ),
    # Carried state (truncated BPTT), the regime of its figures in docs/ (the author's is
    # fresh windows: experiments/fbam_author.py).
    train_=dict(
      steps=a["steps"],
      batch_size=a["batch"],
      seq_len=a["seq_len"],
      carry_state=True,
      log_every=20,
      eval_every=500,
      eval_batches=8,
      eval_seq_len=512,
      eval_batch_size=16,
      ckpt_every=1000,
      position_buckets=4,
    ),
    data_=dict(
      dir="data/compilers_24x80",
      sources=TRAIN_SOURCES + VAL_SOURCES,
      val_sources=VAL_SOURCES,
      max_keys_per_commit=100_000,
      max_lane_steps=8192,
      tokenizer_size=4096,
    ),
  )
  if a["minutes"]:
    # A wall-clock-budgeted run (the scaling sweep on a lease): short warm-up, constant rate,
    # validation at the same log-spaced steps in every run so that alpha(step) can be fitted.
    c.train.max_minutes = a["minutes"]
    c.train.eval_every = 10**9
    c.train.eval_at = EVAL_AT
    c.train.eval_batches = 4
    c.optim.warmup_steps = 30
    c.optim.schedule = "constant"
  return c
