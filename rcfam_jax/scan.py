"""Blocked scans: the time loops of the frame head, the loss and the LSTM's blocks.

`blocked_scan` runs a block function over consecutive time blocks (time is axis 0 of every leaf
of `xs`), optionally under `jax.checkpoint`: reverse mode then stores only each block's inputs
and recomputes its internals, which bounds memory by one block's activations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def blocked_scan(fn, carry, xs, block: int, *, checkpoint: bool = False, policy=None):
  """fn(carry, xs_block) -> (carry, ys_block), over blocks of `block` steps; a shorter last block.

  Returns (carry, ys) with the block outputs concatenated along time. policy: a
  jax.checkpoint_policies rule for what each checkpointed block keeps (None: only its inputs).
  """
  length = jax.tree.leaves(xs)[0].shape[0]
  block = max(1, min(block, length))
  n, rem = divmod(length, block)
  f = jax.checkpoint(fn, prevent_cse=False, policy=policy) if checkpoint else fn
  split = lambda x: x[: n * block].reshape((n, block) + x.shape[1:])
  carry, ys = jax.lax.scan(f, carry, jax.tree.map(split, xs))
  ys = jax.tree.map(lambda y: y.reshape((n * block,) + y.shape[2:]), ys)
  if rem:
    carry, ys_tail = f(carry, jax.tree.map(lambda x: x[n * block :], xs))
    ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), ys, ys_tail)
  return carry, ys
