"""Two processes joined by jax.distributed on CPU train one model: hosts agree on stops.

Each process runs `python -m rcfam_jax.main` with one CPU device and half of the global batch.
One of them receives SIGTERM mid-run: both must save the same step and exit cleanly, and a restart
of both must end with the parameters and data order of an uninterrupted two-process run.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from data_pipelines import reader as reader_lib
from data_pipelines import synthetic
from experiments import smoke
from rcfam_jax import checkpoint, data, experiment, model

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 10
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _config(repo, data_dir):
  c = smoke.get_config(f"steps={STEPS},dir={data_dir}")
  c.data.sources, c.data.val_fraction, c.data.max_segment_steps = (repo,), 0.3, 200
  c.train.log_every, c.train.eval_every, c.train.ckpt_every = 1, 1000, 1000
  return c


def _flags(c) -> list[str]:
  return [
    f"--config.data.sources=('{c.data.sources[0]}',)",
    f"--config.data.dir={c.data.dir}",
    "--config.data.val_fraction=0.3",
    "--config.data.max_segment_steps=200",
    "--config.train.log_every=1",
    "--config.train.eval_every=1000",
    "--config.train.ckpt_every=1000",
  ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  repo = str(tmp_path_factory.mktemp("repo"))
  synthetic.make_repo(repo, n_commits=10, seed=3, lines=30, special=False)
  c = _config(repo, str(tmp_path_factory.mktemp("data") / "ds"))
  exp = experiment.parse_config(c)
  data.prepare(exp.data, (exp.model.rows, exp.model.cols))  # built once, before the processes
  return c


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(c, workdir, port):
  procs = []
  for i in range(2):
    env = {
      **os.environ,
      "JAX_PLATFORMS": "cpu",
      "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
      "JAX_NUM_PROCESSES": "2",
      "JAX_PROCESS_ID": str(i),
      "PYTHONPATH": str(ROOT),
    }
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    cmd = [
      sys.executable,
      "-m",
      "rcfam_jax.main",
      "--config",
      f"{ROOT}/experiments/smoke.py:steps={STEPS},dir={c.data.dir}",
      f"--workdir={workdir}",
      *_flags(c),
    ]
    procs.append(
      subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
      )
    )
  return procs


def _wait(procs, timeout=300):
  outs = [p.communicate(timeout=timeout)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _run(c, workdir):
  return _wait(_start(c, workdir, _free_port()))


def _latest(workdir, c):
  params = jax.eval_shape(
    lambda: model.init(jax.random.PRNGKey(0), experiment.parse_config(c).model)
  )
  with checkpoint.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    step, items, _ = ckpt.restore_latest({"params": params}, data=False)
  states = [
    json.loads(
      (
        pathlib.Path(workdir) / "checkpoints" / str(step) / "data" / f"process_{i}-of-2.json"
      ).read_text()
    )
    for i in range(2)
  ]
  return step, items["params"], states


def _train_steps(workdir):
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  return [r["step"] for r in rows if "train_loss" in r]


def test_sigterm_on_one_host_stops_both_at_one_step_and_resumes_exactly(dataset, tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  _run(dataset, straight)

  procs = _start(dataset, resumed, _free_port())
  deadline = time.monotonic() + 240
  while time.monotonic() < deadline and not any(s >= 3 for s in _train_steps_or_none(resumed)):
    assert all(p.poll() is None for p in procs), "a process ended before the signal"
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)  # the host that writes no metrics
  outs = _wait(procs)
  assert "SIGTERM" in outs[1] and "a stop signal on another process" in outs[0]
  step, _, states = _latest(resumed, dataset)
  assert 3 <= step < STEPS
  assert states[0] != states[1]  # each process saved its own reader position

  _run(dataset, resumed)  # both processes restart and finish
  s1, p1, d1 = _latest(straight, dataset)
  s2, p2, d2 = _latest(resumed, dataset)
  assert s1 == s2 == STEPS
  assert d1 == d2  # the same data order on both hosts
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), p1, p2)


def _train_steps_or_none(workdir):
  try:
    return _train_steps(workdir)
  except (FileNotFoundError, json.JSONDecodeError):
    return []


def test_process_shards_are_disjoint_and_cover_the_one_process_stream(dataset):
  d = dataset.data.dir
  one = reader_lib.LaneReader(d, "train", 2, 8, shard_index=0, shard_count=1, max_lane_steps=64)
  two = [
    reader_lib.LaneReader(d, "train", 1, 8, shard_index=i, shard_count=2, max_lane_steps=64)
    for i in range(2)
  ]
  assert len(one.shard) >= 2
  assert not set(two[0].items) & set(two[1].items)
  assert sorted(two[0].items + two[1].items) == sorted(one.items)
  for epoch in range(2):
    assert sorted(two[0].queue(epoch) + two[1].queue(epoch)) == sorted(one.queue(epoch))
