"""Train one baseline on one task at the training depths, then measure accuracy by depth.

Batches are sampled inside the jitted step from fold_in(data_key, step), so the loop is one
dispatch per step. Evaluation uses one static length (that of the deepest eval depth) for every
depth: rows are right-padded and the models are causal, so padding changes no prediction.

Shape letters here: B rows (batch), T sequence positions, V the task's target classes.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rcfam_jax.research import baselines
from rcfam_jax.research.tasks import task as task_lib


@dataclasses.dataclass(frozen=True)
class RunConfig:
  steps: int = 2000
  batch: int = 128
  lr: float = 1e-3
  warmup: int = 100
  weight_decay: float = 0.01
  clip: float = 1.0
  min_depth: int = 1
  train_max_depth: int = 16
  eval_depths: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
  eval_per_depth: int = 256
  eval_batch: int = 256  # rows per eval call
  seed: int = 0
  log_every: int = 250
  cliff_threshold: float = 0.9


def masked_metrics(logits_BxTxV, batch: task_lib.Batch):
  """Mean masked CE; per-row step accuracy and last-step accuracy."""
  mask = batch.mask.astype(jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, batch.targets)
  loss = jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  correct = (jnp.argmax(logits_BxTxV, -1) == batch.targets).astype(jnp.float32)
  acc_B = jnp.sum(correct * mask, 1) / jnp.maximum(jnp.sum(mask, 1), 1.0)
  final_B = jnp.take_along_axis(correct, task_lib.last_index(batch.mask)[:, None], 1)[:, 0]
  return loss, acc_B, final_B


def _norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def make_optimizer(run: RunConfig):
  sched = optax.warmup_cosine_decay_schedule(
    0.0, run.lr, max(1, run.warmup), max(run.steps, run.warmup + 1), run.lr * 0.1
  )
  return optax.chain(
    optax.clip_by_global_norm(run.clip), optax.adamw(sched, weight_decay=run.weight_decay)
  )


def fit(
  task,
  model: baselines.ModelConfig,
  run: RunConfig,
  log: Callable[[str], None] = print,
  tag: str = "",
):
  """Returns a JSON-ready dict: params, timings, train metrics and accuracy by eval depth."""
  k_init, k_data, k_eval = jax.random.split(jax.random.PRNGKey(run.seed), 3)
  params = baselines.init(k_init, model)
  tx = make_optimizer(run)
  opt_state = tx.init(params)
  sample = functools.partial(
    task.sample_batch, batch=run.batch, min_depth=run.min_depth, max_depth=run.train_max_depth
  )

  def loss_fn(p, batch):
    loss, acc_B, final_B = masked_metrics(baselines.apply(p, batch.inputs, model), batch)
    return loss, (jnp.mean(acc_B), jnp.mean(final_B))

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def train_step(p, s, step):
    batch = sample(jax.random.fold_in(k_data, step))
    (loss, (acc, final)), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, batch)
    updates, s = tx.update(grads, s, p)
    return (
      optax.apply_updates(p, updates),
      s,
      {"loss": loss, "acc": acc, "final_acc": final, "grad_norm": _norm(grads)},
    )

  t0 = time.perf_counter()
  compile_s, history = None, []
  for step in range(run.steps):
    params, opt_state, m = train_step(params, opt_state, step)
    if step == 0:
      jax.block_until_ready(m)
      compile_s = time.perf_counter() - t0
    if (step + 1) % run.log_every == 0 or step + 1 == run.steps:
      m = {k: float(v) for k, v in m.items()}
      if not np.isfinite(m["loss"]):
        raise FloatingPointError(f"{tag}: loss is {m['loss']} at step {step + 1}")
      history.append({"step": step + 1, **m})
      log(
        f"{tag} step {step + 1}/{run.steps} loss {m['loss']:.4f} acc {m['acc']:.3f} "
        f"final {m['final_acc']:.3f} ({time.perf_counter() - t0:.1f}s)"
      )
  train_s = time.perf_counter() - t0

  t0 = time.perf_counter()
  depth_eval = evaluate(task, model, run, params, k_eval)
  eval_s = time.perf_counter() - t0
  return {
    "params": baselines.param_count(params),
    "compile_s": compile_s,
    "train_s": train_s,
    "step_ms": 1000 * (train_s - compile_s) / max(run.steps - 1, 1),  # after the first step
    "eval_s": eval_s,
    "history": history,
    "eval": depth_eval,
    "cliff_depth": cliff_depth(depth_eval, run.cliff_threshold),
  }


def evaluate(task, model: baselines.ModelConfig, run: RunConfig, params, key):
  """{depth: {'acc': per-step accuracy, 'final_acc': last-step accuracy}} on fresh samples."""
  max_depth = max(run.eval_depths)
  rows = min(run.eval_batch, run.eval_per_depth)

  @jax.jit
  def eval_step(p, rng, depth):
    batch = task.sample_batch(rng, rows, 1, max_depth, depths=depth)
    _, acc_B, final_B = masked_metrics(baselines.apply(p, batch.inputs, model), batch)
    return jnp.sum(acc_B), jnp.sum(final_B)

  out = {}
  for depth in run.eval_depths:
    n_calls = -(-run.eval_per_depth // rows)
    sums = [
      eval_step(params, jax.random.fold_in(key, depth * 100_003 + i), depth) for i in range(n_calls)
    ]
    acc, final = (float(sum(s[j] for s in sums)) / (n_calls * rows) for j in (0, 1))
    out[depth] = {"acc": acc, "final_acc": final}
  return out


def cliff_depth(depth_eval, threshold: float):
  """Smallest eval depth whose last-step accuracy is below `threshold`; None if none is."""
  below = [d for d, m in sorted(depth_eval.items()) if m["final_acc"] < threshold]
  return below[0] if below else None
