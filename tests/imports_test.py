"""The import graph keeps its layers: no cycles, the data pipeline below the trainer, the core
below the research tools. Imports are read from the source (every `import`, also inside a
function), so a lazy import cannot hide a cycle."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("rcfam_jax", "data_pipelines", "experiments")
# What a training job imports (the core: rcfam_jax outside research/) never reaches these.
TOOLS = ("rcfam_jax.research",)


def _module(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
  modules = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      else:
        continue
      deps |= {t for t in targets if t in modules and t != name}
    graph[name] = deps
  return graph


GRAPH = _graph()


def _inside(name: str, prefixes) -> bool:
  return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_cycles():
  state, cycles = {}, []

  def visit(node, stack):
    state[node] = "open"
    for dep in sorted(GRAPH[node]):
      if state.get(dep) == "open":
        cycles.append(stack[stack.index(dep) :] + [dep])
      elif dep not in state:
        visit(dep, stack + [dep])
    state[node] = "done"

  for node in sorted(GRAPH):
    if node not in state:
      visit(node, [node])
  # Package __init__ files that import their own submodules are not cycles of code.
  cycles = [
    c for c in cycles if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))
  ]
  assert not cycles, cycles


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("data_pipelines")))
def test_data_pipeline_imports_no_trainer_and_no_experiment(module):
  bad = [d for d in GRAPH[module] if _inside(d, ("rcfam_jax", "experiments"))]
  assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize(
  "module", sorted(m for m in GRAPH if m.startswith("rcfam_jax") and not _inside(m, TOOLS))
)
def test_core_imports_no_research_tool(module):
  bad = [d for d in GRAPH[module] if _inside(d, TOOLS)]
  assert not bad, f"{module} imports {bad}"


def test_the_research_tools_are_found():
  assert {
    "rcfam_jax.research.bench.cli",
    "rcfam_jax.research.evaluate",
    "rcfam_jax.research.tasks.sweep",
  } <= set(GRAPH)


@pytest.mark.parametrize(
  "module", sorted(m for m in GRAPH if m.startswith("rcfam_jax") and not _inside(m, TOOLS))
)
def test_core_imports_no_experiment(module):
  bad = [d for d in GRAPH[module] if _inside(d, ("experiments",))]
  assert not bad, f"{module} imports {bad}"
