"""Sequence-length scaling in the author's regime: a small FBAM on one compiler repository.

The scaling study of docs/SCALING.md with the author's window regime and optimizer: every
training window starts from the learned (h0, c0) (`train.carry_state=False`), Muon for the
matrices and AdamW for the rest at one constant rate 2e-3 with no warm-up and no clipping
(experiments/fbam_author.py). The model is the author's architecture at a quarter of his width
and at 24x80 frames (his are 48x160): d=256, 3 attention blocks of 8 heads, 2 dilated downsample
blocks, LSTM 256, 4,096 learned action tokens (his vocabulary has 20,352); 5.68 M parameters.
The corpus is one repository, rui314/chibicc (the last 10% of its commits held out; 367,618
training and 32,308 validation actions at 24x80, a 10 MB dataset that travels with a device
run). Why this size:
at 3.27 GFLOP forward per frame against the 71.5 M compilers model's 51.98, its steps are
several times faster than that model's 10.6 s at T=2048 and batch 8 (docs/SCALING.md): on one
H200 it trained at 14,600-25,100 frames/s, 0.37 s per step at T=2048 and batch 4, 0.22 s at
batch 2. Each run stops at `minutes` of training and is evaluated at the same log-spaced steps
(experiments/compilers.py EVAL_AT), so that alpha can be fitted at every common step.

Command (as run on one H200, 2026-12-02, the second study of docs/SCALING.md: batch 2, 1.5
minutes per run; the first study ran `--seq-lens 32,128,512,2048 --arg minutes=1,batch=4`, and
`--equal-tokens` for its control):
  for T in 2048 512 128 32; do     # the same batch at every T
    python -m rcfam_jax.research.scaling run --exp scaling_author --seq-lens $T \
        --root workdirs/scaling_author --arg minutes=1.5,batch=2
  done
  python -m rcfam_jax.research.scaling run --exp scaling_author --seq-lens 32,128,512 \
      --root workdirs/scaling_author_eq --arg minutes=1.5,batch=2 --tokens-per-step 4096
      # the control: 4,096 actions per step, as T=2048's (run as one command per T with
      # --config.train.batch_size=128, 32, 8: the same configs)
  python -m rcfam_jax.research.scaling fit workdirs/scaling_author/T* \
      --out workdirs/scaling_author/fit
  python -m rcfam_jax.research.scaling fit workdirs/scaling_author_eq/T* \
      workdirs/scaling_author/T2048 --out workdirs/scaling_author_eq/fit
  (without network, build the dataset from a local clone first, `python -m data_pipelines.build
  --repo <clone> --out data/chibicc_24x80 --val-fraction 0.1`, and add
  `--config.data.build=False "--config.data.sources=('<clone>',)"` to the run commands)
CPU check (2026-12-02, 2-core VM, the dataset so built; 1 min 36 s): the first study's
  fixed-batch command with `--seq-lens 4,8 --steps 3 --arg batch=2 --config.model.d_model=32
  --config.model.n_head=2 --config.model.lstm_hidden=32 --config.train.eval_seq_len=8
  --config.train.eval_batch_size=2 --config.train.eval_batches=1 --config.train.eval_every=3`:
  both runs trained fresh windows (loss 8.39 and 8.38 at step 3), and `fit` wrote its report.
Hardware: one NVIDIA H200; a 2-core CPU runs it only at toy sizes (--steps, a tiny dataset).
Expected (one H200, the commands above): T=32, 128, 512, 2048 reach about 10,300, 3,700, 1,100
  and 160 steps, with final validation losses 4.58, 4.50, 5.08 and 6.31; the control's runs
  reach 261 to 282 steps; the fixed batch's fit gives alpha intervals that exclude zero at steps
  8 to 1,024, the control's (with the T=2048 run) negative alpha at steps 8 to 256.
"""

from experiments import common, compilers, fbam_author


def get_config(arg=None, *, seq_len: int = 512):
  """experiments/compilers.py's config with the model, optimizer, window regime and corpus
  above."""
  a = common.parse_arg(arg, steps=100_000, batch=8, seq_len=seq_len, minutes=0.0)
  c = compilers.get_config(
    f"steps={a['steps']},batch={a['batch']},minutes={a['minutes']}", seq_len=a["seq_len"]
  )
  c.description = f"author's regime, d=256 on chibicc, trained sequence length {a['seq_len']}"
  c.model.update(d_model=256, lstm_hidden=256, lstm_biases=2)
  c.optim = fbam_author.get_config().optim  # also in place of the budget's warm-up and schedule
  c.train.carry_state = False  # fresh windows: every window from the learned (h0, c0)
  c.data.update(
    dir="data/chibicc_24x80",
    sources=("https://github.com/rui314/chibicc",),
    val_sources=(),
    val_fraction=0.1,
  )
  return c
