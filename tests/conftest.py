"""Shared tiny configurations and batches for the core tests (CPU, float32)."""

import math
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rcfam_jax import model
from rcfam_jax.config import ExecConfig, ModelConfig

jax.config.update("jax_threefry_partitionable", True)

# One persistent compilation cache for the session (a fresh directory, removed at its end, unless
# JAX_COMPILATION_CACHE_DIR names one): a program compiled again, in this process or in a
# subprocess (a resumed run, the same smoke config in another test, the processes of
# `python -m rcfam_jax.main`), is loaded instead. Programs that compile in under 0.3 s are not
# stored.
_OWN_CACHE = not os.environ.get("JAX_COMPILATION_CACHE_DIR")
if _OWN_CACHE:  # not in the processes this one starts: they inherit the variable
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="rcfam_jax_tests_jax_cache_")
COMPILE_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
jax.config.update("jax_compilation_cache_dir", COMPILE_CACHE)
jax.config.update(
  "jax_persistent_cache_min_compile_time_secs",
  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)


# JAX's jax_disable_most_optimizations ("if the cost of optimization is greater than that of
# running a less-optimized program"): XLA:CPU's LLVM backend at -O0, the optimized HLO unchanged
# (fusions, buffers, while loops, collectives: what the tests inspect). Most tests compile far
# longer than they run: compiling takes about half as long, running 2-3x longer; tests that
# mostly run (long training loops) take the `full_optimization` fixture. On by default under
# JAX_PLATFORMS=cpu (`make test`; a run on a GPU compiles as in use); set here and, through the
# environment, in every process the tests start. JAX_DISABLE_MOST_OPTIMIZATIONS=0 or 1 decides.
os.environ.setdefault(
  "JAX_DISABLE_MOST_OPTIMIZATIONS", "1" if os.environ.get("JAX_PLATFORMS") == "cpu" else "0"
)
FAST_COMPILE = os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"].lower() in ("1", "true", "yes", "on")
jax.config.update("jax_disable_most_optimizations", FAST_COMPILE)


@pytest.fixture
def full_optimization(monkeypatch):
  """XLA's full optimization for this test, in this process and in the processes it starts."""
  monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "0")
  before = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", False)
  yield
  jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture
def full_float32_matmuls():
  """float32 matmuls in full precision: on a GPU XLA's default takes TF32 (about 1e-3 relative),
  which float32 tolerances set on a CPU do not allow."""
  with jax.default_matmul_precision("highest"):
    yield


def pytest_unconfigure(config):
  if _OWN_CACHE:
    shutil.rmtree(COMPILE_CACHE, ignore_errors=True)


# The LSTM scan's unroll (ExecConfig.lstm_unroll, 8 by default) sets how long XLA compiles, never
# what the model computes (model_test checks unroll 1, 5 and 8 against each other): tests that
# are not about it run with a small one.
UNROLL = 2


def ex(**fields) -> ExecConfig:
  """ExecConfig(**fields), with lstm_unroll=UNROLL unless `fields` sets it."""
  return ExecConfig(**{"lstm_unroll": UNROLL, **fields})


TINY = ModelConfig(
  rows=8,
  cols=16,
  d_model=32,
  n_layer=2,
  n_head=2,
  downsample_blocks=1,
  lstm_hidden=24,
  lstm_layers=2,
  vocab_size=40,
  compute_dtype="float32",
)


def _draw(fn, key, shape, *args) -> np.ndarray:
  """fn(key, shape, *args) (jax.random.randint, uniform) as the head of one draw of a power of
  two >= 2**15 elements: under jax_threefry_partitionable an element depends on its index alone,
  so the values are the same, and every shape shares one compiled draw (threefry compiles for
  ~1.5 s per shape on a CPU)."""
  n = math.prod(shape)
  return np.asarray(fn(key, (max(1 << 15, 1 << (n - 1).bit_length()),), *args))[:n].reshape(shape)


def random_batch(key, cfg, b, t, *, resets=False):
  kf, ka, kv = jax.random.split(key, 3)
  frames = _draw(jax.random.randint, kf, (b, t) + cfg.frame_shape, 0, 256)
  batch = {
    "frames": jnp.asarray(frames.astype(np.uint8)),
    "actions": jnp.asarray(_draw(jax.random.randint, ka, (b, t), 0, cfg.vocab_size)),
    "valid": jnp.asarray(_draw(jax.random.uniform, kv, (b, t)) > np.float32(0.2)),
  }
  if resets:
    batch["reset"] = jnp.zeros((b, t), bool).at[0, t // 2].set(True).at[-1, 1].set(True)
  return batch


@pytest.fixture(scope="module")
def tiny_params():
  return model.init(jax.random.PRNGKey(0), TINY)
