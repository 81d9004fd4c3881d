"""The quickstart notebook runs top to bottom (so it never rots)."""

import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_notebook_runs(full_optimization):
  """Its kernel (a process of its own) trains 25 steps: fully optimized (conftest)."""
  nb = nbformat.read(os.path.join(ROOT, "examples", "quickstart.ipynb"), as_version=4)
  NotebookClient(
    nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}
  ).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
  assert not [o for o in outputs if o.get("output_type") == "error"]
  text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
  assert "parameters" in text
