"""Synthetic recurrence benchmarks: FRJT, Withheld Maze, S_n composition, Last-Write control."""

from rcfam_jax.research.tasks.frjt import FRJT
from rcfam_jax.research.tasks.last_write import LastWrite
from rcfam_jax.research.tasks.maze import Maze
from rcfam_jax.research.tasks.perm import Permutations
from rcfam_jax.research.tasks.task import Batch, Task

TASKS = {cls.name: cls for cls in (FRJT, Maze, Permutations, LastWrite)}


def make(name: str, **kwargs) -> Task:
  """Builds a task by name ('frjt', 'maze', 'perm', 'last_write') with dataclass keyword fields."""
  if name not in TASKS:
    raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
  return TASKS[name](**kwargs)


__all__ = ["Batch", "FRJT", "LastWrite", "Maze", "Permutations", "TASKS", "Task", "make"]
