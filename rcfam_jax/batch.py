"""The batch every training and evaluation step takes (one structure for all producers).

  frames  (B, T, rows, cols, 7) integer cells: codepoint, fg R G B, bg R G B
  actions (B, T) int: the action taken after each frame
  valid   (B, T) bool, optional: positions that count in the loss (padding after a segment's end)
  reset   (B, T) bool, optional: the LSTM restarts from its learned (h0, c0) before this step
Readers may return more keys (segment ids, positions); `select` keeps the model's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict


class Batch(TypedDict, total=False):
  frames: Any
  actions: Any
  valid: Any
  reset: Any


FIELDS = tuple(Batch.__annotations__)


def select(host: Mapping[str, Any]) -> Batch:
  """The model's inputs of a reader's batch; raises if frames or actions are missing."""
  missing = [k for k in ("frames", "actions") if k not in host]
  if missing:
    raise KeyError(f"a batch needs {missing} (has {sorted(host)})")
  return Batch(**{k: host[k] for k in FIELDS if k in host})
