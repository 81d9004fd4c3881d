"""Multi-device training on simulated CPU devices: 8 devices agree with 1, no collective in a
time loop, checkpoints move between device counts, the scale-out benchmark runs.

The pytest process has already initialised JAX with one CPU device, so the multi-device checks
run this file as a script in a subprocess (`python tests/sharding_test.py MODE DIR`) with
XLA_FLAGS=--xla_force_host_platform_device_count=N; it prints one JSON object.
"""

import functools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIVE = re.compile(
  r"\b(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)(-start)?\("
)
LSTM_OP = re.compile(r'op_name="[^"]*lstm_time_scan/[^"]*while/body/')  # model.backbone's scope


# ---------------------------------------------------------------- HLO analysis (pure text)


def hlo_computations(txt: str) -> dict[str, str]:
  """Computation name -> its body text, from `compiled.as_text()`."""
  comps, name = {}, None
  for line in txt.splitlines():
    m = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$", line)
    if m:
      name = m.group(1)
      comps[name] = []
    elif name is not None:
      comps[name].append(line)
  return {k: "\n".join(v) for k, v in comps.items()}


def _callees(body: str, *, into_loops: bool) -> set[str]:
  out = set()
  for line in body.splitlines():
    if not into_loops and re.search(r"\bwhile\(", line):
      continue
    out.update(re.findall(r"(?:calls|to_apply|body|condition)=%?([\w.\-]+)", line))
    for group in re.findall(r"(?:branch_computations|called_computations)=\{([^}]*)\}", line):
      out.update(x.strip().lstrip("%") for x in group.split(","))
  return out


def _reach(comps, root, *, into_loops: bool) -> set[str]:
  seen, todo = set(), [root]
  while todo:
    c = todo.pop()
    if c not in seen and c in comps:
      seen.add(c)
      todo.extend(_callees(comps[c], into_loops=into_loops))
  return seen


def while_loops(txt: str) -> list[dict]:
  """Every while body: collectives inside it (nested loops included) and whether it is an LSTM
  time loop: its own ops (not only a nested loop's) lie in a while body under `lstm_time_scan`."""
  comps = hlo_computations(txt)
  bodies = sorted(
    {b for c in comps.values() for b in re.findall(r"\bwhile\(.*?body=%?([\w.\-]+)", c)}
  )
  out = []
  for b in bodies:
    own = " ".join(comps[c] for c in _reach(comps, b, into_loops=False))
    every = " ".join(comps[c] for c in _reach(comps, b, into_loops=True))
    out.append(
      {
        "body": b,
        "collectives": len(COLLECTIVE.findall(every)),
        "lstm_step": bool(LSTM_OP.search(own)),
      }
    )
  return out


# ---------------------------------------------------------------- subprocess side


def _setup():
  import jax

  jax.config.update("jax_threefry_partitionable", True)
  sys.path.insert(0, ROOT)


def _smoke():
  from experiments import smoke
  from rcfam_jax.config import ModelConfig

  c = smoke.get_config()
  return ModelConfig(**c.model.to_dict()), c.exec.to_dict()


def _grad_tx():
  """An 'optimizer' that keeps the gradient as its state: train_step then returns the grads."""
  import jax
  import jax.numpy as jnp
  import optax

  zeros = lambda t: jax.tree.map(jnp.zeros_like, t)
  return optax.GradientTransformation(zeros, lambda g, s, p=None: (zeros(g), g))


def _batch(cfg, b, t):
  import jax
  import jax.numpy as jnp

  kf, ka, kv = jax.random.split(jax.random.PRNGKey(1), 3)
  return {
    "frames": jax.random.randint(kf, (b, t) + cfg.frame_shape, 0, 256).astype(jnp.uint8),
    "actions": jax.random.randint(ka, (b, t), 0, cfg.vocab_size),
    "valid": jax.random.uniform(kv, (b, t)) > 0.2,
    "reset": jnp.zeros((b, t), bool).at[0, t // 2].set(True),
  }


def _layout(name, data, fsdp, b, t, microbatches, ex_over):
  """Train step on 1 device and on the mesh; max differences, and the HLO's while loops."""
  import time

  import jax

  t0 = time.perf_counter()

  from rcfam_jax import model, sharding, train
  from rcfam_jax.config import ExecConfig, MeshConfig

  cfg, ex = _smoke()
  bcfg = ExecConfig(**{**ex, **ex_over})
  tx = _grad_tx()
  state = train.init_train_state(jax.random.PRNGKey(0), cfg, tx)
  batch, rnn = _batch(cfg, b, t), model.initial_state(state.params, b)
  step = functools.partial(train.train_step, cfg=cfg, ex=bcfg, tx=tx, microbatches=microbatches)
  ref = jax.jit(step)(state, batch, rnn)
  t1 = time.perf_counter()
  mesh = sharding.make_mesh(MeshConfig(data=data, fsdp=fsdp))
  state_sh = sharding.tree_shardings(state, mesh, min_bytes=0)  # FSDP wherever it divides
  rnn_sh, batch_sh = sharding.state_sharding(mesh), sharding.batch_sharding(mesh)
  compiled = (
    jax.jit(
      functools.partial(step, mesh=mesh),
      in_shardings=(state_sh, batch_sh, rnn_sh),
      out_shardings=(state_sh, rnn_sh, sharding.replicated(mesh)),
    )
    .lower(state, batch, rnn)
    .compile()
  )
  got = compiled(
    jax.device_put(state, state_sh), jax.device_put(batch, batch_sh), jax.device_put(rnn, rnn_sh)
  )
  diff = lambda a, b: max(
    float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y))))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  hlo = compiled.as_text()
  t2 = time.perf_counter()
  return {
    "layout": name,
    "seconds": [round(t1 - t0, 1), round(t2 - t1, 1)],
    "mesh": dict(mesh.shape),
    "loss": float(ref[2]["loss"]),
    "loss_diff": diff(ref[2]["loss"], got[2]["loss"]),
    "grad_diff": diff(ref[0].opt_state, got[0].opt_state),
    "grad_max": diff(ref[0].opt_state, jax.tree.map(np.zeros_like, ref[0].opt_state)),
    "state_diff": diff(ref[1], got[1]),
    "collectives_total": len(COLLECTIVE.findall(hlo)),
    "loops": while_loops(hlo),
  }


def _checkpoint_state(mesh):
  import jax
  import optax

  from rcfam_jax import model, sharding, train

  cfg, _ = _smoke()
  tx = optax.adamw(1e-3)
  init = functools.partial(train.init_train_state, jax.random.PRNGKey(0), cfg, tx)
  sh = sharding.tree_shardings(jax.eval_shape(init), mesh, min_bytes=0)
  state = jax.jit(init, out_shardings=sh)()
  rnn = jax.jit(lambda p: model.initial_state(p, 8), out_shardings=sharding.state_sharding(mesh))(
    state.params
  )
  rnn_sh = jax.tree.map(lambda _: sharding.state_sharding(mesh), rnn)
  return {"train": state, "rnn": rnn}, {"train": sh, "rnn": rnn_sh}


def run_devices(mode: str, workdir: str) -> dict:
  """The subprocess's checks; `mode` = 'train8' | 'restore4'."""
  _setup()
  import jax

  from rcfam_jax import checkpoint, sharding
  from rcfam_jax.config import MeshConfig

  out = {"devices": jax.device_count()}
  path = os.path.join(workdir, "ckpt")
  if mode == "train8":
    out["layouts"] = [
      _layout("data_parallel", 8, 1, 8, 8, 1, {"head_chunk": 2}),
      _layout(
        "frame_parallel_fsdp",
        2,
        4,
        4,
        8,
        2,
        {"head_chunk": 1, "lstm_remat": "nested", "recompute_interval": 4},
      ),
    ]
    out["auto_mesh"] = dict(sharding.make_mesh(MeshConfig(), batch=2).shape)
    out["process_rows"] = sharding.process_rows(sharding.make_mesh(MeshConfig()), 16)
    import jax.numpy as jnp

    tree, shardings = _checkpoint_state(sharding.make_mesh(MeshConfig(data=2, fsdp=4)))
    tree["train"] = tree["train"]._replace(
      params=jax.tree.map(lambda x: x + 0.5, tree["train"].params), step=jnp.int32(7)
    )
    tree = jax.device_put(tree, shardings)
    out["saved_specs"] = sorted({str(x.sharding.spec) for x in jax.tree.leaves(tree)})
    np.savez(os.path.join(workdir, "want.npz"), *[np.asarray(x) for x in jax.tree.leaves(tree)])
    with checkpoint.Checkpointer(path) as ckpt:
      ckpt.save(7, tree, {"lanes": [1, 2]}, force=True)
      ckpt.wait()
  elif mode == "restore4":
    out.update(restore(path, workdir, MeshConfig(data=1, fsdp=4)))
  return out


def restore(path, workdir, mesh_cfg) -> dict:
  """Restores the 8-device checkpoint onto the current devices' mesh; compares with want.npz."""
  import jax

  from rcfam_jax import checkpoint, sharding

  mesh = sharding.make_mesh(mesh_cfg)
  tree, shardings = _checkpoint_state(mesh)
  target = jax.tree.map(
    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
    jax.eval_shape(lambda: tree),
    shardings,
  )  # restored onto this mesh
  with checkpoint.Checkpointer(path) as ckpt:
    step, got, data_state = ckpt.restore_latest(target)
  want = np.load(os.path.join(workdir, "want.npz"))
  leaves = jax.tree.leaves(got)
  equal = all(np.array_equal(np.asarray(x), want[f"arr_{i}"]) for i, x in enumerate(leaves))
  same_sharding = all(x.sharding == s for x, s in zip(leaves, jax.tree.leaves(shardings)))
  return {
    "step": step,
    "data_state": data_state,
    "equal": equal,
    "shardings": same_sharding,
    "n_devices": len(mesh.devices.flat),
  }


# ---------------------------------------------------------------- pytest side


def _subprocess(n_devices: int, *args, timeout=300) -> str:
  env = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    PYTHONPATH=ROOT,
    XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}",
  )
  r = subprocess.run(
    [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
  )
  assert r.returncode == 0, r.stderr[-4000:]
  return r.stdout


def _run(n_devices: int, mode: str, workdir) -> dict:
  out = _subprocess(n_devices, os.path.abspath(__file__), mode, str(workdir))
  return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def eight(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sharding")
  return workdir, _run(8, "train8", workdir)


@pytest.mark.parametrize("layout", ["data_parallel", "frame_parallel_fsdp"])
def test_eight_devices_match_one(eight, layout):
  res = next(r for r in eight[1]["layouts"] if r["layout"] == layout)
  assert eight[1]["devices"] == 8
  assert res["loss_diff"] < 1e-5 * max(1.0, res["loss"]), res
  assert res["grad_max"] > 1e-3, res  # the gradients are not trivially zero
  assert res["grad_diff"] < 2e-6, res
  assert res["state_diff"] < 1e-5, res


@pytest.mark.parametrize("layout", ["data_parallel", "frame_parallel_fsdp"])
def test_no_collective_inside_the_lstm_time_loop(eight, layout):
  res = next(r for r in eight[1]["layouts"] if r["layout"] == layout)
  lstm_loops = [loop for loop in res["loops"] if loop["lstm_step"]]
  assert len(lstm_loops) >= 2, res["loops"]  # forward and backward time scans found
  assert res["collectives_total"] > 0  # the program is partitioned (grad psum)
  assert all(loop["collectives"] == 0 for loop in lstm_loops), res["loops"]
  if layout == "data_parallel":  # one micro-batch: no loop at all holds a collective
    assert all(loop["collectives"] == 0 for loop in res["loops"]), res["loops"]


def test_mesh_rules(eight):
  assert eight[1]["auto_mesh"] == {"data": 2, "fsdp": 4}  # B=2 < 8 devices: frames over fsdp
  assert eight[1]["process_rows"] == [0, 1]  # one process holds every row
  assert "P()" in eight[1]["saved_specs"]  # small leaves and the LSTM replicated
  assert any("fsdp" in s for s in eight[1]["saved_specs"])


def test_checkpoint_from_8_devices_restores_on_4_and_on_1(eight):
  workdir = eight[0]
  four = _run(4, "restore4", workdir)
  assert four["n_devices"] == 4 and four["step"] == 7, four
  assert four["equal"] and four["shardings"], four
  assert four["data_state"] == {"lanes": [1, 2]}
  from rcfam_jax.config import MeshConfig

  one = restore(os.path.join(workdir, "ckpt"), workdir, MeshConfig())  # this process: 1 device
  assert one["n_devices"] == 1 and one["equal"] and one["shardings"], one


def test_scaleout_bench_runs_on_two_cpu_devices():
  out = _subprocess(
    1,
    "-m",
    "rcfam_jax.research.bench.scaleout",
    "--devices-cpu",
    "2",
    "--seq-len",
    "8",
    "--batch-per-device",
    "2",
    "--steps",
    "1",
    "rows=8",
    "cols=16",
    "d_model=16",
    "n_layer=1",
    "n_head=2",
    "downsample_blocks=1",
    "lstm_hidden=16",
    "vocab_size=32",
    "compute_dtype=float32",
    "head_chunk=4",
    "loss_chunk=8",
  )
  rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
  assert [r["devices"] for r in rows] == [1, 2], out
  assert rows[1]["global_batch"] == 2 * rows[0]["global_batch"] == 4
  assert all(r["frames_per_s"] > 0 and np.isfinite(r["loss"]) for r in rows), out
  assert "speed-up" in out


if __name__ == "__main__":
  print(json.dumps(run_devices(sys.argv[1], sys.argv[2])))
