"""Inference from a training run: step frame by frame, sample actions.

  params, cfg, run = workdir.load("workdirs/demo")   # rcfam_jax.workdir: the newest params
  step = rollout.make_step(cfg)                       # jitted; cost and memory flat in position
  state = rollout.init_state(params, batch=1)
  logits_BxV, state = step(params, frame_BxRxCx7, state)
  action_B = rollout.sample(key, logits_BxV, temperature=0.8, top_k=20)

`step` takes only the recurrent state and one frame, so its compiled program (and its memory)
is the same at frame 1 and frame 1,000,000. Samplers are pure functions of a key and logits.
`rollout` runs a policy (e.g. `model_policy`) in closed loop on a data_pipelines editor.
Shape letters: the core's (rcfam_jax/__init__.py), and K the `top_k` candidates of `sample`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from data_pipelines import keys as keys_lib
from data_pipelines import render, syntax
from rcfam_jax import data, model
from rcfam_jax.config import ModelConfig
from rcfam_jax.workdir import RunInfo

__all__ = [
  "dataset",
  "init_state",
  "make_step",
  "greedy",
  "sample",
  "Rollout",
  "rollout",
  "model_policy",
]


def dataset(run: RunInfo, data_dir: str | None = None) -> data.Dataset:
  """The run's dataset (never builds one); `data_dir` overrides the configured directory."""
  cfg = dataclasses.replace(run.exp.data, build=False, **({"dir": data_dir} if data_dir else {}))
  return data.prepare(cfg, (run.exp.model.rows, run.exp.model.cols))


def init_state(params, batch: int = 1) -> model.State:
  """The learned initial recurrent state for `batch` sequences."""
  return model.initial_state(params, batch)


def make_step(cfg: ModelConfig):
  """jit(params, frame_BxRxCx7, state, reset_B=None) -> (logits_BxV float32, new_state)."""
  return jax.jit(functools.partial(model.step, cfg=cfg))


def greedy(logits_xV) -> jax.Array:
  """The most likely action (int32)."""
  return jnp.argmax(logits_xV, axis=-1).astype(jnp.int32)


def sample(key, logits_xV, *, temperature: float = 1.0, top_k: int | None = None) -> jax.Array:
  """Samples an action (int32) from softmax(logits / temperature), among the top k if given.

  temperature == 0 is greedy. Only the k largest logits can be picked (ties broken by index).
  """
  if temperature < 0:
    raise ValueError(f"temperature must be >= 0, got {temperature}")
  if top_k is not None and not 1 <= top_k:
    raise ValueError(f"top_k must be >= 1, got {top_k}")
  if temperature == 0:
    return greedy(logits_xV)
  logits_xV = jnp.asarray(logits_xV, jnp.float32)
  if top_k is None or top_k >= logits_xV.shape[-1]:
    return jax.random.categorical(key, logits_xV / temperature, axis=-1).astype(jnp.int32)
  vals_xK, idx_xK = jax.lax.top_k(logits_xV, top_k)
  pick_x = jax.random.categorical(key, vals_xK / temperature, axis=-1)
  return jnp.take_along_axis(idx_xK, pick_x[..., None], axis=-1)[..., 0].astype(jnp.int32)


# -- closed loop: the model drives the editor ------------------------------------------------


class Rollout(NamedTuple):
  keys: list[int]  # the editor keys pressed, in order
  files: dict[str, str]  # the editor's files after them
  screens: list[tuple]  # (cp, st, (row, col)) shown before each action (for asciicasts)
  actions: list[int]  # the policy's actions, one per step (== keys without expansion)


def rollout(
  policy,
  editor,
  rows: int,
  cols: int,
  max_steps: int,
  stop_key: int = keys_lib.COMMIT,
  action_keys=None,
) -> Rollout:
  """Runs `policy(frame_RxCx7 uint8) -> action id` on a copy of `editor` for at most
  `max_steps` actions. `action_keys(action)` gives the keys an action presses, in order (default:
  the action is one key id; a tokenized run's action is a token of several). Keys are pressed
  one by one, stopping right after `stop_key` even inside an action; the next frame is rendered
  after all keys of the action, as the dataset renders the frame of a token (replay.py)."""
  ed, rend = copy.deepcopy(editor), render.Renderer(rows, cols)
  actions, pressed, screens = [], [], []
  for _ in range(max_steps):
    cp, st, r, c = rend.draw(ed)
    cp, st = cp.copy(), st.copy()
    st[r, c] |= syntax.CURSOR
    screens.append((cp, st, (r, c)))
    a = int(policy(render.to_rgb(cp, st)))
    actions.append(a)
    for k in (a,) if action_keys is None else action_keys(a):
      pressed.append(k)
      ed.press(k)
      if k == stop_key:
        return Rollout(pressed, ed.file_texts(), screens, actions)
  return Rollout(pressed, ed.file_texts(), screens, actions)


def model_policy(
  params, cfg: ModelConfig, key, *, temperature: float = 0.0, top_k: int | None = None, step=None
):
  """A stateful policy closure: each call feeds one frame and samples the next action."""
  step = step or make_step(cfg)
  carry = {"state": init_state(params, 1), "key": key}

  def policy(frame_RxCx7):
    logits, carry["state"] = step(params, jnp.asarray(frame_RxCx7)[None], carry["state"])
    carry["key"], k = jax.random.split(carry["key"])
    return int(sample(k, logits, temperature=temperature, top_k=top_k)[0])

  return policy
