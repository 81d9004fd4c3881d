"""Training entry point.

  python -m rcfam_jax.main --config experiments/demo.py[:ARG] --workdir DIR [--config.x.y=v]

Re-running the same command resumes from the newest checkpoint in DIR.
"""

import logging
import os

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from rcfam_jax import loop

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "experiments/NAME.py[:ARG]", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints and metrics go")
_COMPILE_CACHE = flags.DEFINE_string(
  "compile_cache",
  "~/.cache/rcfam_jax/jax",
  "JAX's persistent compilation cache: a second run of the same program (a resumed run, the "
  "next job of a sweep) loads it instead of compiling; '' turns it off. The environment's "
  "JAX_COMPILATION_CACHE_DIR, when set, wins.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  absl_logging.set_verbosity(absl_logging.WARNING)  # orbax and tfds are chatty at INFO
  logging.getLogger("rcfam_jax").setLevel(logging.INFO)
  import jax

  jax.config.update("jax_threefry_partitionable", True)
  if _COMPILE_CACHE.value and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(_COMPILE_CACHE.value))
  last = loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  logging.getLogger("rcfam_jax").info("done: %s", {k: round(v, 4) for k, v in last.items()})


if __name__ == "__main__":
  app.run(main)
