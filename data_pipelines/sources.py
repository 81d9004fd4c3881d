"""Resolution of build sources: 'self', local paths and Git URLs.

'self' is the repository holding the current working directory. A URL is cloned
(full history) into `cache_dir` once, via a temporary directory renamed when the
clone is complete; without network access the error says how to use a local clone.
"""

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess

from data_pipelines.git_reader import GitSourceError

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")


@dataclasses.dataclass(frozen=True)
class Source:
  spec: str  # as given
  name: str  # short stable name (recorded per segment)
  path: str  # local repository directory


def is_url(spec: str) -> bool:
  return bool(_URL.match(spec))


def _name(spec: str) -> str:
  base = re.sub(r"\.git$", "", spec.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
  return re.sub(r"[^\w.-]", "_", base) or "repo"


def locate(spec: str, cache_dir: str | None = None) -> Source:
  """The Source `spec` names, without cloning: a URL's path is its clone cache entry,
  which may not exist yet."""
  if spec == "self":
    p = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if p.returncode:
      raise GitSourceError(
        f"self: {os.getcwd()} is not inside a Git repository; run from "
        "the rcfam_jax checkout or pass --repo PATH"
      )
    path = p.stdout.strip()
    return Source(spec, _name(path), path)
  if not is_url(spec):
    path = os.path.abspath(os.path.expanduser(spec))
    return Source(spec, _name(path), path)
  cache_dir = os.path.abspath(cache_dir or os.path.join(".cache", "repos"))
  digest = hashlib.sha1(spec.encode()).hexdigest()[:8]
  return Source(spec, _name(spec), os.path.join(cache_dir, f"{_name(spec)}-{digest}"))


def resolve(spec: str, cache_dir: str | None = None) -> Source:
  """locate(), cloning a URL into its cache entry when that is missing."""
  src = locate(spec, cache_dir)
  dest = src.path
  if is_url(spec) and not os.path.isdir(dest):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    p = subprocess.run(
      ["git", "clone", "-q", "--no-checkout", spec, tmp], capture_output=True, text=True
    )
    if p.returncode:
      shutil.rmtree(tmp, ignore_errors=True)
      raise GitSourceError(
        f"{spec}: clone failed ({p.stderr.strip()}). Without network access, clone it "
        f"elsewhere (full history, not --depth) and pass the local path instead, or "
        f"place the clone at {dest}"
      )
    os.rename(tmp, dest)
  return src


def head(path: str) -> str | None:
  """The HEAD commit of the repository at `path`, or None when it cannot be read."""
  if not os.path.isdir(path):
    return None
  p = subprocess.run(
    ["git", "-C", path, "rev-parse", "-q", "--verify", "HEAD^{commit}"],
    capture_output=True,
    text=True,
  )
  return p.stdout.strip() or None
