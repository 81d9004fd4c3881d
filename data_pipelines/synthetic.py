"""Deterministic synthetic Git repositories for tests and benchmarks.

`make_repo` drives the `git` command line (fixed author, dates and seed, so the
commit shas are stable) through adds, modifications, deletes, renames, a merge
from a side branch, a binary file, non-UTF-8, CRLF, no final newline, an empty
commit, a symlink, a submodule entry and one oversized commit.
"""

import os
import random
import subprocess

_ENV = {
  "GIT_AUTHOR_NAME": "t",
  "GIT_AUTHOR_EMAIL": "t@example.com",
  "GIT_COMMITTER_NAME": "t",
  "GIT_COMMITTER_EMAIL": "t@example.com",
  "GIT_CONFIG_GLOBAL": os.devnull,
  "GIT_CONFIG_NOSYSTEM": "1",
}
WORDS = (
  "int char return if else while for static struct void unsigned long "
  "x y n i p q tok node expr parse emit 0 1 42 0x10"
).split()


class Repo:
  def __init__(self, path: str):
    self.path, self.tick = path, 0
    os.makedirs(path, exist_ok=True)
    self.git("init", "-q", "-b", "main")

  def git(self, *args: str) -> str:
    env = dict(
      os.environ,
      **_ENV,
      GIT_AUTHOR_DATE=f"{1700000000 + self.tick} +0000",
      GIT_COMMITTER_DATE=f"{1700000000 + self.tick} +0000",
    )
    return subprocess.run(
      ["git", "-C", self.path, *args], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()

  def write(self, rel: str, data: bytes | str) -> None:
    full = os.path.join(self.path, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
      f.write(data.encode() if isinstance(data, str) else data)

  def commit(self, msg: str, *extra: str) -> str:
    self.tick += 60
    self.git("add", "-A")
    self.git("commit", "-q", "--allow-empty", "-m", msg, *extra)
    return self.git("rev-parse", "HEAD")


def c_source(rng: random.Random, n_lines: int) -> str:
  lines = []
  for _ in range(n_lines):
    indent = "\t" * rng.randrange(3)
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 9)))
    lines.append(indent + body + rng.choice([";", " {", "", " // note", ' "s";']))
  return "\n".join(lines) + "\n"


def mutate(rng: random.Random, text: str) -> str:
  lines = text.split("\n")
  for _ in range(rng.randrange(1, 5)):
    i = rng.randrange(len(lines))
    op = rng.randrange(3)
    if op == 0:
      lines.insert(i, c_source(rng, 1).rstrip("\n"))
    elif op == 1 and len(lines) > 2:
      del lines[i]
    else:
      lines[i] = lines[i].replace(rng.choice(WORDS), rng.choice(WORDS), 1) + " x"
  return "\n".join(lines)


def make_repo(
  path: str, n_commits: int = 12, seed: int = 0, lines: int = 40, special: bool = True
) -> Repo:
  """A repository with `n_commits` random edit commits plus, if `special`, the edge cases."""
  rng = random.Random(seed)
  r = Repo(path)
  files = {f"src/f{i}.c": c_source(rng, lines) for i in range(3)}
  for p, t in files.items():
    r.write(p, t)
  r.write("Makefile", "all:\n\tcc src/*.c\n")
  r.write("README.md", "not allowlisted\n")
  r.commit("initial")
  for k in range(n_commits):
    p = rng.choice(sorted(files))
    files[p] = mutate(rng, files[p])
    r.write(p, files[p])
    if k % 5 == 4:
      new = f"src/g{k}.h"
      files[new] = c_source(rng, 5)
      r.write(new, files[new])
    r.commit(f"edit {k}")
  if not special:
    return r
  r.write("src/bin.c", b"\x00\x01binary\x00" * 10)
  r.write("src/latin1.c", b'char *s = "caf\xe9";\n')
  r.write("src/crlf.c", b"int a;\r\nint b;\r\n")
  r.write("src/nofinal.c", "int last;")
  r.write("src/utf8.c", "/* \u00e9t\u00e9 \u2603 */\n")
  r.commit("edge files")
  os.symlink("f0.c", os.path.join(path, "src/link.c"))
  r.commit("symlink")
  r.commit("empty")
  r.git("mv", "src/f1.c", "src/renamed.c")
  r.commit("rename")
  os.remove(os.path.join(path, "src/f2.c"))
  r.commit("delete")
  r.git("checkout", "-q", "-b", "side")
  r.write("src/side.c", c_source(rng, 8))
  r.commit("side 1")
  r.write("src/side.c", c_source(rng, 9))
  r.commit("side 2")
  r.git("checkout", "-q", "main")
  r.write("src/f0.c", mutate(rng, files["src/f0.c"]))
  r.commit("main during side")
  r.tick += 60
  r.git("merge", "-q", "--no-ff", "side", "-m", "merge side")
  head = r.git("rev-parse", "HEAD")
  r.git("update-index", "--add", "--cacheinfo", f"160000,{head},vendor/sub")
  r.tick += 60
  r.git("commit", "-q", "-m", "submodule")  # no `add -A`: it would drop the gitlink
  r.write("src/big.c", c_source(rng, 3000))
  r.commit("oversized")
  r.write("src/after.c", "int after;\n")
  r.write("src/crlf.c", b"int a;\r\nint c;\r\n")
  r.commit("after oversized")
  return r
