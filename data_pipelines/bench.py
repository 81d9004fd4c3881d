"""Throughput of the build (per core) and of the reader (per process).

    python -m data_pipelines.bench [--rows 24 --cols 80] [--commits 600] [--work DIR]

Builds a synthetic repository, then measures in this one process: git read +
compile (keys/s), replay + render (frames/s), replay + render + encode (frames/s,
the build's per-core work), and the lane reader (frames/s delivered, with the
key stream and with a learned tokenizer). Prints one JSON line.
"""

import argparse
import json
import os
import platform
import tempfile
import time

from data_pipelines import build, codec, episode, replay, sources, synthetic
from data_pipelines.reader import LaneReader, Split
from data_pipelines.tokenizer import Tokenizer


def _best(fn, reps: int = 2) -> float:
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t)
  return best


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(prog="python -m data_pipelines.bench")
  ap.add_argument("--rows", type=int, default=24)
  ap.add_argument("--cols", type=int, default=80)
  ap.add_argument("--commits", type=int, default=600)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq-len", type=int, default=256)
  ap.add_argument("--work", default=None)
  a = ap.parse_args(argv)
  work = a.work or tempfile.mkdtemp(prefix="fbam_bench_")
  repo = os.path.join(work, "repo")
  if not os.path.isdir(repo):
    synthetic.make_repo(repo, n_commits=a.commits, seed=0, lines=400)
  cfg = build.BuildConfig(rows=a.rows, cols=a.cols, workers=1)
  res = {
    "rows": a.rows,
    "cols": a.cols,
    "cpu": platform.processor() or platform.machine(),
    "cores": os.cpu_count(),
  }

  t = time.perf_counter()
  ep = episode.compile_episode(repo, "bench", cfg.episode())
  dt = time.perf_counter() - t
  n = sum(len(s.keys) for s in ep.segments)
  res.update(commits=ep.stats["commits"], keys=n, compile_keys_per_s=round(n / dt))

  def render_only():
    for s in ep.segments:
      for _ in replay.replay(s.start_files, s.keys, a.rows, a.cols, cfg.window, reuse=True):
        pass

  def render_encode():
    enc = codec.Encoder()
    for s in ep.segments:
      for w in replay.replay(s.start_files, s.keys, a.rows, a.cols, cfg.window, reuse=True):
        enc.encode(enc.cells(w.cp, w.st))

  res["render_frames_per_s"] = round(n / _best(render_only))
  res["render_encode_frames_per_s"] = round(n / _best(render_encode))

  out = os.path.join(work, "ds")
  if not os.path.isdir(out):
    build.build([sources.resolve(repo)], out, cfg)
  split = Split(out)
  res["bytes_per_frame"] = round(
    sum(
      os.path.getsize(os.path.join(out, split.meta["tfds_dir"], f))
      for f in os.listdir(os.path.join(out, split.meta["tfds_dir"]))
      if "array_record" in f
    )
    / n,
    1,
  )
  tok = Tokenizer.learn([split.segment_arrays(i)[0] for i in range(len(split.segments))], 2048)
  for name, tk in (("reader_frames_per_s", None), ("reader_tokenized_frames_per_s", tok)):
    r = LaneReader(
      out, "train", a.batch, a.seq_len, seed=0, tokenizer=tk, shard_index=0, shard_count=1
    )
    r.next_batch()
    steps = 0
    t = time.perf_counter()
    while time.perf_counter() - t < 3.0:
      b = r.next_batch()
      steps += b["frames"].shape[0] * b["frames"].shape[1]
    res[name] = round(steps / (time.perf_counter() - t))
  res["batch"], res["seq_len"] = a.batch, a.seq_len
  print(json.dumps(res))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
