"""A dataset's `segments.json`: what a build writes (`plan`, `record`), checked loading, and
the fingerprint of what built it.

`action_encoding` records the version of the key id -> terminal bytes table the actions were
made with (keys.ACTION_ENCODING); `load` refuses a dataset recorded with another one, or with
none (built before the table was versioned): "rebuild: action encoding changed".

The fingerprint (key "fingerprint") records the builder version, the sources as given
with their names, paths and HEAD commits, the frame size, the window, the validation
split (held-out source names, val_fraction), the compile caps and the file filter.
`differences` compares it with what a config asks for; `moved_heads` with the sources'
current HEAD commits. Sidecars written before the fingerprint existed hold the same facts
under `config` and `repos`: `fingerprint` derives it from them, so they are checked alike.
"""

import dataclasses
import json
import os
import subprocess

from data_pipelines import keys as K
from data_pipelines import sources as sources_lib
from data_pipelines import tfds_builder
from data_pipelines.git_reader import GitSourceError

SIDECAR = "segments.json"
BUILDER_VERSION = tfds_builder.VERSION
FIELDS = (
  "builder_version",
  "sources",
  "rows",
  "cols",
  "window",
  "val_sources",
  "val_fraction",
  "max_keys_per_commit",
  "max_segment_steps",
  "filter",
)
REBUILD = "rebuild the dataset (python -m data_pipelines.build ... --overwrite)"
_TOP = {
  "pipeline_version": str,
  "tfds_dir": str,
  "rows": int,
  "cols": int,
  "window": int,
  "config": dict,
  "repos": list,
  "splits": dict,
  "segments": list,
}
_SOURCE = {"source": str, "name": str, "path": str, "head": str}
_REPO = {"name": str, "source": str, "path": str, "head": str, "split": str}
_SEGMENT = {
  "id": int,
  "split": str,
  "repo": str,
  "first_record": int,
  "n_windows": int,
  "n_steps": int,
}


class DatasetError(ValueError):
  """A dataset directory that cannot be used as asked (names the file or fields and the fix)."""


class EncodingChanged(DatasetError):
  """A dataset whose actions were made with another key -> bytes table than this code's."""


def load(ds_dir: str) -> dict:
  """The parsed sidecar of `ds_dir`, checked for the keys the readers use."""
  path = os.path.join(ds_dir, SIDECAR)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"{ds_dir}: no {SIDECAR}; not a complete dataset "
      "(build it with python -m data_pipelines.build)"
    )
  try:
    with open(path, encoding="utf-8") as f:
      meta = json.load(f)
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
    raise DatasetError(
      f"{path}: not valid JSON ({e}); the file is truncated or was edited: {REBUILD}"
    ) from None
  if isinstance(meta, dict) and "pipeline_version" in meta:
    check_encoding(meta, path)
  problem = _problem(meta)
  if problem is None and not os.path.isdir(os.path.join(ds_dir, meta["tfds_dir"])):
    problem = f"its records directory {meta['tfds_dir']!r} is missing"
  if problem:
    raise DatasetError(f"{path}: {problem}; the file is truncated or was edited: {REBUILD}")
  return meta


def check_encoding(meta: dict, path: str = SIDECAR) -> None:
  """Raises EncodingChanged unless the sidecar `meta` records this code's action encoding."""
  got = meta.get("action_encoding")
  if got == K.ACTION_ENCODING:
    return
  made = f"{got!r}" if got else "the key bytes used before the encoding was recorded"
  raise EncodingChanged(
    f"{path}: rebuild: action encoding changed: its actions were made with {made}, this code "
    f"reads {K.ACTION_ENCODING!r} (docs/FIDELITY.md). Rebuild it: an experiment's dataset "
    "with `python -m rcfam_jax.data --config experiments/<EXP>.py --overwrite`, any other with "
    "`python -m data_pipelines.build --repo ... --out DIR --overwrite`"
  )


def _missing(d, schema: dict) -> str | None:
  if not isinstance(d, dict):
    return "not an object"
  for k, t in schema.items():
    if not isinstance(d.get(k), t) or (t is int and isinstance(d[k], bool)):
      return f"{k!r} is missing or not {'a string' if t is str else 'an ' + t.__name__}"
  return None


def _problem(meta) -> str | None:
  """What is wrong with a parsed sidecar (None: usable)."""
  if (bad := _missing(meta, _TOP)) is not None:
    return bad
  if min(meta["rows"], meta["cols"], meta["window"]) < 1:
    return f"frame size {meta['rows']}x{meta['cols']} or window {meta['window']} is not >= 1"
  for i, r in enumerate(meta["repos"]):
    if (bad := _missing(r, _REPO)) is not None:
      return f"repos[{i}]: {bad}"
  records, counts = {}, {}
  for i, s in enumerate(meta["segments"]):
    if (bad := _missing(s, _SEGMENT)) is not None:
      return f"segments[{i}]: {bad}"
    first, n = records.get(s["split"], 0), s["n_steps"]
    if (
      s["id"] != i
      or s["first_record"] != first
      or n < 1
      or s["n_windows"] != -(-n // meta["window"])
    ):
      return (
        f"segments[{i}] (id {s['id']}, first_record {s['first_record']}, n_windows "
        f"{s['n_windows']}, n_steps {n}) is out of place: expected id {i}, "
        f"first_record {first} and ceil(n_steps / {meta['window']}) windows"
      )
    records[s["split"]] = first + s["n_windows"]
    counts[s["split"]] = counts.get(s["split"], 0) + 1
  for split, v in meta["splits"].items():
    got = {"segments": counts.get(split), "records": records.get(split)}
    if not isinstance(v, dict) or any(v.get(k) != got[k] for k in got):
      return f"splits[{split!r}] is {v} but its segments give {got}"
  if set(counts) - set(meta["splits"]):
    return f"segments of splits {sorted(set(counts) - set(meta['splits']))} not in 'splits'"
  fp = meta.get("fingerprint")
  if fp is None:
    return None
  if not isinstance(fp, dict):
    return "'fingerprint' is not an object"
  if set(FIELDS) - set(fp):
    return f"'fingerprint' lacks {sorted(set(FIELDS) - set(fp))}"
  if not isinstance(fp["sources"], list) or not isinstance(fp["val_sources"], list):
    return "'fingerprint' sources or val_sources is not a list"
  for i, src in enumerate(fp["sources"]):
    if (bad := _missing(src, _SOURCE)) is not None:
      return f"fingerprint sources[{i}]: {bad}"
  return None


def make(srcs, heads: list[str], held: set[str], cfg) -> dict:
  """The fingerprint of a build: sources.Source list, their HEADs, the held-out source
  names and the BuildConfig."""
  fp = {
    "builder_version": BUILDER_VERSION,
    "sources": [
      {"source": s.spec, "name": s.name, "path": s.path, "head": h} for s, h in zip(srcs, heads)
    ],
    "val_sources": [s.name for s in srcs if s.name in held],
    "filter": dataclasses.asdict(cfg.filter),
  }
  for k in ("rows", "cols", "window", "val_fraction", "max_keys_per_commit", "max_segment_steps"):
    fp[k] = getattr(cfg, k)
  return json.loads(json.dumps(fp))  # as read back: lists, not tuples


def fingerprint(meta: dict, path: str = SIDECAR) -> dict:
  """The stored fingerprint, or for older sidecars the same facts from `config` and `repos`."""
  if "fingerprint" in meta:
    return meta["fingerprint"]
  cfg, repos = meta["config"], meta["repos"]
  lacking = [k for k in ("max_keys_per_commit", "max_segment_steps", "filter") if k not in cfg]
  if lacking:
    raise DatasetError(
      f"{path}: written before datasets recorded what built them and its "
      f"config lacks {lacking}, so it cannot be checked: {REBUILD}"
    )
  return {
    "builder_version": meta["pipeline_version"],
    "sources": [{k: r[k] for k in ("source", "name", "path", "head")} for r in repos],
    "rows": meta["rows"],
    "cols": meta["cols"],
    "window": meta["window"],
    "val_sources": [r["name"] for r in repos if r["split"] == "validation"],
    "val_fraction": cfg.get("val_fraction", 0.0),  # absent: before temporal hold-out
    **{k: cfg[k] for k in ("max_keys_per_commit", "max_segment_steps", "filter")},
  }


def _same_source(spec: str, stored: dict, cache_dir: str | None) -> bool:
  if spec == stored["source"]:
    return True
  if sources_lib.is_url(spec) or sources_lib.is_url(stored["source"]):
    return False
  try:
    path = sources_lib.locate(spec, cache_dir).path
  except GitSourceError:
    return False
  return os.path.realpath(path) == os.path.realpath(stored["path"])


def differences(fp: dict, want: dict, cache_dir: str | None = None) -> list[tuple]:
  """(field, dataset value, wanted value) for each field of `want` that the fingerprint
  disagrees with. want["sources"]: specs as given; want["val_sources"]: source names or
  specs held out; fields left out of `want` are not compared."""
  diffs = []
  stored = fp["sources"]
  specs = list(want.get("sources", [s["source"] for s in stored]))
  same = len(specs) == len(stored) and all(
    _same_source(spec, s, cache_dir) for spec, s in zip(specs, stored)
  )
  if not same:
    diffs.append(("sources", [s["source"] for s in stored], specs))
  if "val_sources" in want:
    val = set(want["val_sources"])
    names = [s["name"] for s in stored] if same else [_name(s, cache_dir) for s in specs]
    held = [n for spec, n in zip(specs, names) if spec in val or n in val]
    unknown = sorted(val - set(specs) - set(names))
    if sorted(fp["val_sources"]) != sorted(held) or unknown:
      diffs.append(("val_sources", sorted(fp["val_sources"]), sorted(held) + unknown))
  for k in FIELDS:
    if k not in ("sources", "val_sources") and k in want and want[k] is not None:
      w = json.loads(json.dumps(want[k]))
      if fp[k] != w:
        diffs.append((k, fp[k], w))
  return diffs


def _name(spec: str, cache_dir: str | None) -> str:
  try:
    return sources_lib.locate(spec, cache_dir).name
  except GitSourceError:
    return spec


def describe(diffs: list[tuple], prefix: str = "") -> str:
  """'window: dataset 64, asked 32; ...' (prefix: e.g. 'data.' before each field)."""
  return "; ".join(f"{prefix}{k}: dataset {a!r}, asked {b!r}" for k, a, b in diffs)


def moved_heads(
  fp: dict, cache_dir: str | None = None, paths: list[str] | None = None
) -> tuple[list[str], list[str]]:
  """(sources whose HEAD moved since the build, sources whose HEAD cannot be read), each a
  sentence naming the source, its path and both commits. paths: where the sources are now
  (default: located from their specs)."""
  moved, unchecked = [], []
  for i, s in enumerate(fp["sources"]):
    try:
      path = paths[i] if paths else sources_lib.locate(s["source"], cache_dir).path
    except GitSourceError:
      path = s["path"]
    head = sources_lib.head(path)
    if head is None:
      unchecked.append(
        f"source {s['source']!r}: no repository at {path} to compare "
        f"with the commit the dataset was built from ({s['head'][:12]})"
      )
    elif head != s["head"]:
      rel = _relation(path, s["head"], head)
      moved.append(
        f"source {s['source']!r} ({path}) is now at {head[:12]} but the "
        f"dataset was built from {s['head'][:12]}{rel}"
      )
  return moved, unchecked


def _relation(path: str, old: str, new: str) -> str:
  p = subprocess.run(
    ["git", "-C", path, "rev-list", "--count", f"{old}..{new}"], capture_output=True, text=True
  )
  base = subprocess.run(
    ["git", "-C", path, "merge-base", "--is-ancestor", old, new], capture_output=True
  )
  if p.returncode == 0 and base.returncode == 0:
    n = int(p.stdout)
    return f" ({n} new commit{'s' * (n != 1)})"
  return " (not an ancestor: history rewritten or another branch)"


def plan(episodes, split_of, window: int) -> list[tuple[dict, object]]:
  """[(segment metadata, segment)] in record order: split, then repository, then segment.
  A segment is in 'validation' if its repository is held out or it is (after) a
  'val_holdout' segment."""
  out, next_record = [], {}
  for split in ("train", "validation"):
    for ep in episodes:
      for seg in ep.segments:
        if (seg.split if split_of[ep.repo] == "train" else "validation") != split:
          continue
        n = len(seg.keys)
        first = next_record.get(split, 0)
        windows = -(-n // window)
        next_record[split] = first + windows
        out.append(
          (
            {
              "id": len(out),
              "split": split,
              "repo": seg.repo,
              "index": seg.index,
              "reason": seg.reason,
              "start_commit": seg.start_commit,
              "teleported": seg.teleported,
              "first_commit": seg.commits[0],
              "last_commit": seg.commits[-1],
              "n_commits": len(seg.commits),
              "first_commit_index": int(seg.commit_index[0]),
              "first_record": first,
              "n_windows": windows,
              "n_steps": n,
            },
            seg,
          )
        )
  return out


def record(episodes, srcs, split_of, plan, cfg, tfds_dir: str) -> dict:
  """The whole segments.json of a build: its config, fingerprint, repositories, split totals
  and the `plan`'s segment metadata."""
  by_name = {s.name: s for s in srcs}
  return {
    "pipeline_version": tfds_builder.VERSION,
    "action_encoding": K.ACTION_ENCODING,
    "tfds_dir": tfds_dir,
    "config": dataclasses.asdict(cfg) | {"workers": None},
    "rows": cfg.rows,
    "cols": cfg.cols,
    "window": cfg.window,
    "fingerprint": make(
      srcs, [e.head for e in episodes], {n for n, sp in split_of.items() if sp == "validation"}, cfg
    ),
    "repos": [
      {
        "name": e.repo,
        "source": by_name[e.repo].spec,
        "path": e.path,
        "head": e.head,
        "split": split_of[e.repo],
        "val_commit": e.val_commit,
        "stats": dict(sorted(e.stats.items())),
      }
      for e in episodes
    ],
    "splits": {
      s: {
        "segments": sum(m["split"] == s for m, _ in plan),
        "records": sum(m["n_windows"] for m, _ in plan if m["split"] == s),
        "steps": sum(m["n_steps"] for m, _ in plan if m["split"] == s),
      }
      for s in sorted({m["split"] for m, _ in plan})
    },
    "segments": [m for m, _ in plan],
  }
