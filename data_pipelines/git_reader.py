"""First-parent history of a Git repository as filtered, normalised file changes.

One streamed `git log --first-parent --diff-merges=first-parent -M --raw -z`
lists each commit's changes against its first parent (the root against the
empty tree); one `git cat-file --batch` process serves the new blobs. The reader
keeps its own view {path: normalised text} of the filtered tree, so every change
is expressed against exactly what the editor holds. Skipped entries (not
allowlisted, submodule, symlink, binary, over `max_blob_bytes`) are counted.
"""

import collections
import dataclasses
import os
import subprocess
from collections.abc import Iterator

from data_pipelines.compiler import Change
from data_pipelines.text import normalize, normalize_path

COMPILER_EXTENSIONS = (
  ".c",
  ".h",
  ".cc",
  ".cpp",
  ".hpp",
  ".y",
  ".l",
  ".rs",
  ".zig",
  ".ml",
  ".go",
  ".py",
  ".s",
  ".S",
  ".ll",
  ".td",
)
COMPILER_NAMES = ("Makefile", "CMakeLists.txt")
_NULL_SHA = "0" * 40


class GitSourceError(RuntimeError):
  """Bad input: names the repository (and commit) and how to fix it."""


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  extensions: tuple[str, ...] = COMPILER_EXTENSIONS  # empty tuple: every extension
  names: tuple[str, ...] = COMPILER_NAMES
  max_blob_bytes: int = 256 * 1024
  max_commit_bytes: int = 2 * 1024 * 1024

  def allowed(self, path: str) -> bool:
    if not self.extensions:
      return True
    base = path.rsplit("/", 1)[-1]
    return base in self.names or base.endswith(self.extensions)


@dataclasses.dataclass
class Commit:
  index: int  # position in the first-parent chain, from 0
  sha: str
  parents: tuple[str, ...]
  changes: list[Change]
  new_bytes: int  # bytes of the new blobs kept (allowlisted text)
  oversized: bool  # new_bytes > max_commit_bytes


def git(repo: str, *args: str, check: bool = True) -> str:
  p = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
  if check and p.returncode:
    raise GitSourceError(f"{repo}: `git {' '.join(args)}` failed: {p.stderr.strip()}")
  return p.stdout.strip()


def check_repo(repo: str) -> str:
  """Validates `repo` and returns its HEAD sha (clear errors for bad input)."""
  if not os.path.isdir(repo):
    raise GitSourceError(f"{repo}: no such directory; pass a local clone, a Git URL or 'self'")
  p = subprocess.run(
    ["git", "-C", repo, "rev-parse", "--is-inside-work-tree", "--absolute-git-dir"],
    capture_output=True,
    text=True,
  )
  if p.returncode:
    raise GitSourceError(
      f"{repo}: not a Git repository; pass the top of a clone (the directory holding .git)"
    )
  _check_top(repo, *p.stdout.split("\n")[:2])
  head = git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
  if not head:
    raise GitSourceError(
      f"{repo}: empty repository (HEAD has no commits); commit something or pass another source"
    )
  if git(repo, "rev-parse", "--is-shallow-repository") == "true":
    raise GitSourceError(
      f"{repo}: shallow clone (history cut at a grafted commit); run "
      f"`git -C {repo} fetch --unshallow` and build again"
    )
  return head


def _check_top(repo: str, in_work_tree: str, git_dir: str) -> None:
  """`repo` must be the top of a clone (or a bare repository / .git directory itself):
  Git reads the whole history from any subdirectory, which would be built silently."""
  if in_work_tree == "true":
    top = git(repo, "rev-parse", "--show-toplevel")
  else:
    top = git_dir
  if os.path.realpath(repo) != os.path.realpath(top):
    kind = "clone" if in_work_tree == "true" else "repository"
    raise GitSourceError(
      f"{repo}: a subdirectory of the {kind} {top}, not its top; Git would build the whole "
      f"history of {top}. Pass --repo {top} (a build covers whole repositories)"
    )


def _tokens(stream, size: int = 1 << 16) -> Iterator[bytes]:
  rest = b""
  while chunk := stream.read(size):
    parts = (rest + chunk).split(b"\0")
    rest = parts.pop()
    yield from parts
  if rest:
    yield rest


class BlobReader:
  """A `git cat-file --batch` process."""

  def __init__(self, repo: str):
    self.repo = repo
    self.proc = subprocess.Popen(
      ["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )

  def read(self, sha: str, limit: int) -> bytes | None:
    """Contents of blob `sha`, or None (read and dropped) if it exceeds `limit` bytes."""
    self.proc.stdin.write(sha.encode() + b"\n")
    self.proc.stdin.flush()
    header = self.proc.stdout.readline().split()
    if len(header) != 3 or header[1] != b"blob":
      raise GitSourceError(f"{self.repo}: cannot read blob {sha}: {header!r}")
    size = int(header[2])
    if size <= limit:
      data = self.proc.stdout.read(size)
    else:
      data = None
      while size > 0:
        size -= len(self.proc.stdout.read(min(size, 1 << 20)))
    self.proc.stdout.read(1)
    return data

  def close(self) -> None:
    self.proc.stdin.close()
    self.proc.wait()


class GitReader:
  """Iterates first-parent commits; `view` is the filtered tree after the last one."""

  def __init__(self, repo: str, cfg: FilterConfig = FilterConfig()):
    self.repo, self.cfg = repo, cfg
    self.head = check_repo(repo)
    self.view: dict[str, str] = {}
    self.skipped: collections.Counter = collections.Counter()
    self._owner: dict[str, bytes] = {}  # normalised path -> raw path

  def commits(self) -> Iterator[Commit]:
    cmd = [
      "git",
      "-C",
      self.repo,
      "-c",
      "core.quotepath=off",
      "-c",
      "log.showSignature=false",
      "log",
      "--first-parent",
      "--diff-merges=first-parent",
      "--reverse",
      "-M",
      "--raw",
      "-z",
      "--no-abbrev",
      "--no-color",
      "--no-ext-diff",
      "--format=%x01%H %P",
      self.head,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    blobs = BlobReader(self.repo)
    try:
      yield from self._parse(_tokens(proc.stdout), blobs)
    finally:
      blobs.close()
      proc.stdout.close()
      err = proc.stderr.read().decode(errors="replace")
      if proc.wait() and err:
        raise GitSourceError(f"{self.repo}: git log failed: {err.strip()}")

  def _parse(self, tokens: Iterator[bytes], blobs: BlobReader) -> Iterator[Commit]:
    commit, index = None, 0
    tokens = iter(tokens)
    for tok in tokens:
      tok = tok.lstrip(b"\n")
      if tok.startswith(b"\x01"):
        if commit is not None:
          yield self._finish(commit)
          index += 1
        shas = tok[1:].decode().split()
        commit = Commit(index, shas[0], tuple(shas[1:]), [], 0, False)
      elif tok.startswith(b":"):
        meta = tok[1:].decode().split()
        paths = [next(tokens)]
        if meta[4][0] in "RC":
          paths.append(next(tokens))
        self._entry(commit, meta, paths, blobs)
    if commit is not None:
      yield self._finish(commit)

  def _finish(self, commit: Commit) -> Commit:
    commit.oversized = commit.new_bytes > self.cfg.max_commit_bytes
    return commit

  def _entry(self, commit: Commit, meta: list[str], paths: list[bytes], blobs) -> None:
    _, new_mode, _, new_sha, status = meta
    src, dst = self._path(paths[0]), self._path(paths[-1])
    text = None
    if status[0] != "D" and dst is not None:
      text = self._blob(commit, dst, new_mode, new_sha, blobs)
    view, changes = self.view, commit.changes
    if status[0] == "R" and src in view and src != dst:
      if text is not None and dst not in view:
        changes.append(Change("rename", dst, text, old_path=src))
        del view[src]
        view[dst] = text
        return
      changes.append(Change("delete", src))
      del view[src]
    if dst is None:
      return
    if text is None:
      if dst in view:
        changes.append(Change("delete", dst))
        del view[dst]
    elif view.get(dst) != text:
      changes.append(Change("modify", dst, text))
      view[dst] = text

  def _path(self, raw: bytes) -> str | None:
    path = normalize_path(raw)
    owner = self._owner.setdefault(path, raw)
    if owner != raw:
      self.skipped["path_collision"] += 1
      return None
    return path

  def _blob(self, commit: Commit, path: str, mode: str, sha: str, blobs) -> str | None:
    """Normalised text of a new blob, or None if it is filtered out (counted)."""
    if mode == "160000":
      self.skipped["submodule"] += 1
    elif mode == "120000":
      self.skipped["symlink"] += 1
    elif not self.cfg.allowed(path):
      self.skipped["not_allowlisted"] += 1
    elif sha == _NULL_SHA:
      pass
    else:
      data = blobs.read(sha, self.cfg.max_blob_bytes)
      if data is None:
        self.skipped["huge_file"] += 1
      elif b"\0" in data[:8000]:
        self.skipped["binary"] += 1
      else:
        try:
          data.decode("utf-8")
        except UnicodeDecodeError:
          self.skipped["non_utf8_replaced"] += 1
        if b"\r" in data:
          self.skipped["cr_normalized"] += 1
        commit.new_bytes += len(data)
        return normalize(data)
    return None
