"""Data- and frame-head parallelism over a ("data", "fsdp") device mesh, across hosts.

  sharding.initialize_distributed(mesh_cfg)      # first, before any other JAX call
  mesh = sharding.make_mesh(mesh_cfg, batch=B)
  state = jax.jit(init, out_shardings=sharding.tree_shardings(abstract, mesh, min_bytes))()
  batch = sharding.global_batch(reader.next_batch(), mesh, B)   # this process's rows only

Axes: "data" shards the batch (the LSTM and the loss run on each device's B/data sequences);
"fsdp" shards large parameters and, in the frame head, the time axis, so the B*T frames are spread
over all data*fsdp devices even when B is smaller than the device count.

Where the work runs (`frame_parallel`, `batch_parallel`, both `shard_map`):
  frames (B,T) P(data) -> frame head on P(data, fsdp): each device slices its own T/fsdp steps
  (no communication) and runs the chunked, rematerialised head on them -> emb_TxBxD P(fsdp, data)
  -> one all-gather over fsdp, outside every loop -> LSTM + loss on P(None, data).
Inside both shard_maps the parameters are cast to device-varying once, before any loop, so each
device accumulates its own gradient through the loops and the single psum (data-parallel
all-reduce) happens after them: no collective runs inside the serial time loop, forward or
backward (tests/sharding_test.py checks the compiled HLO).
"""

from __future__ import annotations

import logging
import math
import os

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from rcfam_jax.config import MeshConfig

log = logging.getLogger(__name__)

DATA, FSDP = "data", "fsdp"
_REPLICATED_KEYS = ("'lstm'",)  # the recurrence: never sharded (a gather per time step otherwise)


def _wants_distributed(cfg: MeshConfig) -> bool:
  if cfg.distributed != "auto":
    return cfg.distributed == "on"
  env = os.environ
  if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_NODELIST" in env:
    return True
  return bool(env.get("JAX_COORDINATOR_ADDRESS")) and int(env.get("JAX_NUM_PROCESSES", "2")) > 1


def initialize_distributed(cfg: MeshConfig) -> bool:
  """Joins the processes of a multi-host job; a no-op for one process. True if it initialised.

  Explicit: JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=n JAX_PROCESS_ID=i. SLURM
  (srun, one task per host or per GPU) and Cloud TPU pods are detected by JAX itself.
  """
  if not _wants_distributed(cfg) or jax.distributed.is_initialized():
    return False
  env = os.environ
  kwargs = {}
  if env.get("JAX_COORDINATOR_ADDRESS") and env.get("JAX_NUM_PROCESSES"):
    kwargs = {
      "coordinator_address": env["JAX_COORDINATOR_ADDRESS"],
      "num_processes": int(env["JAX_NUM_PROCESSES"]),
      "process_id": int(env["JAX_PROCESS_ID"]),
    }
  jax.distributed.initialize(**kwargs)
  log.info(
    "jax.distributed: process %d of %d, %d local / %d global devices",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )
  return True


def mesh_shape(cfg: MeshConfig, n_devices: int, batch: int | None = None) -> tuple[int, int]:
  """(data, fsdp) for `n_devices`; data=-1 takes the rest, at most gcd(batch, rest)."""
  fsdp, data = cfg.fsdp, cfg.data
  if data == -1:
    if n_devices % fsdp:
      raise ValueError(f"mesh.fsdp={fsdp} does not divide the {n_devices} devices")
    data = n_devices // fsdp
    if batch is not None and batch % data:
      data = math.gcd(batch, data)  # the other devices spread frames over time instead
      fsdp = n_devices // data
  if data * fsdp != n_devices:
    raise ValueError(
      f"mesh data={data} x fsdp={fsdp} != {n_devices} devices: set mesh.data=-1 "
      "or make data*fsdp equal the device count"
    )
  if batch is not None and batch % data:
    raise ValueError(
      f"global batch {batch} is not divisible by mesh.data={data}: use a batch "
      "that is a multiple of it, or a smaller mesh.data (larger mesh.fsdp)"
    )
  return data, fsdp


def make_mesh(cfg: MeshConfig = MeshConfig(), *, batch: int | None = None, devices=None):
  """The ("data", "fsdp") mesh over `devices` (default: all devices of all processes)."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(cfg, len(devices), batch)
  auto = (jax.sharding.AxisType.Auto,) * 2  # jit + shard_map semantics, not Explicit sharding
  return jax.make_mesh(shape, (DATA, FSDP), axis_types=auto, devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  """Every batch leaf (B, ...): the batch axis over data."""
  return NamedSharding(mesh, P(DATA))


def state_sharding(mesh) -> NamedSharding:
  """The LSTM lane state (layers, B, H)."""
  return NamedSharding(mesh, P(None, DATA))


def leaf_spec(path, shape, nbytes: int, fsdp: int, min_bytes: int) -> P:
  """Replicated, or the largest dim divisible by fsdp sharded over it (FSDP rule)."""
  if (
    fsdp == 1
    or nbytes < min_bytes
    or any(k in jax.tree_util.keystr(path) for k in _REPLICATED_KEYS)
  ):
    return P()
  for i in sorted(range(len(shape)), key=lambda i: -shape[i]):
    if shape[i] % fsdp == 0:
      return P(*([None] * i + [FSDP]))
  return P()


def tree_shardings(tree, mesh, min_bytes: int = 4 << 20):
  """NamedShardings for a tree of arrays or ShapeDtypeStructs (params, optimizer state, ...)."""
  fsdp = mesh.shape[FSDP]

  def one(path, x):
    nbytes = int(np.prod(x.shape, dtype=np.int64)) * np.dtype(x.dtype).itemsize
    return NamedSharding(mesh, leaf_spec(path, x.shape, nbytes, fsdp, min_bytes))

  return jax.tree_util.tree_map_with_path(one, tree)


def process_rows(mesh, batch: int) -> tuple[int, int]:
  """(shard_index, shard_count) of this process's contiguous rows of the global batch.

  Processes whose devices hold the same rows (data < process count) get the same shard.
  """
  idx = batch_sharding(mesh).addressable_devices_indices_map((batch,))
  blocks = sorted({s[0].indices(batch)[:2] for s in idx.values()})
  lo, hi = blocks[0][0], blocks[-1][1]
  if sum(b - a for a, b in blocks) != hi - lo or batch % (hi - lo) or lo % (hi - lo):
    raise ValueError(f"this process's batch rows {blocks} are not one aligned block of {batch}")
  return lo // (hi - lo), batch // (hi - lo)


def global_batch(local, mesh, batch: int):
  """This process's rows (numpy, leading axis B/shard_count) -> global arrays sharded on data."""
  sh = batch_sharding(mesh)
  return {
    k: jax.make_array_from_process_local_data(sh, np.asarray(v), (batch,) + v.shape[1:])
    for k, v in local.items()
  }


def put_global(host_tree, sharding):
  """A tree of numpy arrays that every process holds in full -> global arrays with `sharding`."""
  return jax.tree.map(
    lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda i, x=x: np.asarray(x)[i]),
    host_tree,
  )


def _vary(tree, axes):
  """Casts replicated values to device-varying over `axes`: their gradient is summed over the
  devices once, where the cast is (before the loops), instead of at every use inside them."""
  return jax.lax.pcast(tree, axes, to="varying")


def check_batch(mesh, b: int, t: int | None = None):
  """Raises ValueError unless B divides over data and T over fsdp (the frame head's time split)."""
  if b % mesh.shape[DATA]:
    raise ValueError(f"batch {b} is not divisible by mesh data={mesh.shape[DATA]}")
  if t is not None and t % mesh.shape[FSDP]:
    raise ValueError(
      f"sequence length {t} is not divisible by mesh fsdp={mesh.shape[FSDP]}: "
      "the frame head splits time over fsdp"
    )


def frame_parallel(embed_fn, mesh):
  """embed_fn(params, frames_BxTx...) -> emb_TxBxD, run with the frames over all devices.

  Each device embeds its (B/data, T/fsdp) block of frames; the result is emb_TxBxD sharded
  P(fsdp, data). The parameters are replicated inside (FSDP shards are gathered once, before).
  """
  axes = (DATA, FSDP)

  def local(params, frames):
    return embed_fn(_vary(params, axes), frames)

  run = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(DATA, FSDP)), out_specs=P(FSDP, DATA))

  def wrapped(params, frames):
    check_batch(mesh, frames.shape[0], frames.shape[1])
    return run(params, frames)

  return wrapped


def batch_parallel(fn, mesh, n_args: int):
  """fn(params, *xs) on each device's batch shard; replicated over fsdp.

  Every leaf of xs and of fn's outputs has the batch at axis 1 (time- or layer-major), sharded
  P(None, data). The parameters are cast to varying over data, so the time loops inside
  fn accumulate local gradients and their all-reduce happens once, after the loops.
  """
  spec = P(None, DATA)

  def local(params, *xs):
    return fn(_vary(params, DATA), *xs)

  run = jax.shard_map(local, mesh=mesh, in_specs=(P(),) + (spec,) * n_args, out_specs=spec)

  def wrapped(params, *xs):
    check_batch(mesh, jax.tree.leaves(xs[0])[0].shape[1])
    return run(params, *xs)

  return wrapped


def is_primary() -> bool:
  return jax.process_index() == 0


def agree(flags: dict[str, bool]) -> dict[str, bool]:
  """Each flag OR-ed over all processes, so that every host takes the same stop decision at the
  same step (a signal or a deadline seen by one host stops all of them)."""
  if jax.process_count() == 1:
    return dict(flags)
  from jax.experimental import multihost_utils

  names = sorted(flags)
  got = multihost_utils.process_allgather(np.array([bool(flags[k]) for k in names], np.int32))
  return {k: bool(v) for k, v in zip(names, np.asarray(got).reshape(-1, len(names)).max(0))}


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier `name` (a no-op for one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
