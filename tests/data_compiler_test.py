"""Diff -> keys round trip: compile, replay on a fresh editor, compare.

Test 3 of docs/DATA_PIPELINE.md §9.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_pipelines import compiler, render
from data_pipelines import keys as K
from data_pipelines.text import normalize

ROWS, COLS = 12, 40
ALPHABET = st.sampled_from(list("ab \t\n{};x1\r") + ["\u00e9", "\x00", "\x7f", "long" * 30])
TEXT = st.lists(ALPHABET, max_size=60).map("".join)
LINES = st.lists(
  st.sampled_from(["int a;", "", "\treturn 0;", "}", "x" * 70, "/* c */"]), max_size=40
).map("\n".join)
ANY_TEXT = st.one_of(TEXT, LINES, LINES.map(lambda s: s + "\n"))


def replay_files(start, keys):
  ed = render.new_editor(ROWS, COLS, start)
  ed.press_all(keys)
  return ed.file_texts()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=ANY_TEXT, new=ANY_TEXT)
def test_round_trip(old, new):
  old, new = normalize(old), normalize(new)
  start = {"f.c": old, "other.h": "x"}
  comp = compiler.Compiler(render.new_editor(ROWS, COLS, start))
  keys = comp.commit([compiler.Change("modify", "f.c", new)])
  assert keys[-1] == K.COMMIT and keys[:1] == [K.OPEN]
  assert replay_files(start, keys) == {"f.c": new, "other.h": "x"}


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=5), data=st.data())
def test_history_round_trip(texts, data):
  """A sequence of commits over several files with renames and deletes."""
  comp = compiler.Compiler(render.new_editor(ROWS, COLS))
  want = {}
  for i, t in enumerate(texts):
    t = normalize(t)
    path = data.draw(st.sampled_from(["a.c", "b.c", "d/e.h"]))
    changes = [compiler.Change("modify", path, t)]
    want[path] = t
    others = sorted(set(want) - {path})
    if others and data.draw(st.booleans()):
      victim = others[0]
      if data.draw(st.booleans()):
        changes.append(compiler.Change("delete", victim))
        del want[victim]
      else:
        new_path = f"r{i}.c"
        changes.append(compiler.Change("rename", new_path, want.pop(victim) + "!", old_path=victim))
        want[new_path] = changes[-1].text
    comp.commit(changes)
    assert comp.ed.file_texts() == want
  assert replay_files({}, comp.keys) == want
  assert comp.keys.count(K.COMMIT) == len(texts)


def test_cap_raises_and_navigation_is_cheap():
  big = "\n".join(f"line {i}" for i in range(5000))
  comp = compiler.Compiler(render.new_editor(ROWS, COLS, {"f": big}), max_keys=200)
  comp.commit([compiler.Change("modify", "f", big.replace("line 4000", "LINE"))])
  assert len(comp.keys) < 60  # GOTO, not 4000 DOWNs
  with pytest.raises(compiler.CapExceeded):
    comp.commit([compiler.Change("modify", "g", "x" * 500)])


def test_keepends():
  assert compiler.keepends("") == [] and compiler.keepends("a\n") == ["a\n"]
  assert compiler.keepends("a\nb") == ["a\n", "b"] and compiler.keepends("\n\n") == ["\n", "\n"]


def test_normalize():
  assert normalize(b"a\r\nb\rc\xff\xc3\xa9\x00\t") == "a\nb\nc\x7f\x7f\x7f\t"
