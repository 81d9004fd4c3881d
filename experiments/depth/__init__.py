"""Depth-benchmark configs, one module per (task, model): `get_config(arg) -> ConfigDict`.

SWEEP is what `python -m rcfam_jax.tasks.sweep` runs by default, in this order (sized for one
~8 min H200 run in the `full` preset); OPTIONAL (the S3 composition task) runs with --optional
or --only.
"""
SWEEP = (
    "frjt_lstm1",
    "frjt_transformer1",
    "frjt_transformer2",
    "frjt_transformer4",
    "frjt_transformer8",
    "frjt_mamba1",
    "frjt_mamba8",
    "maze_lstm1",
    "maze_transformer8",
    "maze_mamba8",
    "last_write_lstm1",
    "last_write_transformer1",
    "last_write_mamba8",
    "frjt16_lstm1",
    "frjt16_transformer8",
    "frjt16_mamba8",
    "maze_transformer1",
)
OPTIONAL = (
    "perm_lstm1",
    "perm_transformer8",
    "perm_mamba8",
)
