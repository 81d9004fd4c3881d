"""Depth-benchmark configs, one module per (task, model): `get_config(arg) -> ConfigDict`.

SWEEP is the set that `python -m rcfam_jax.tasks.sweep` runs by default, in this order;
EXTRA (FRJT with max jump 16) runs with --extra.
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
    "maze_transformer1",
    "maze_transformer8",
    "maze_mamba8",
    "last_write_lstm1",
    "last_write_transformer1",
    "last_write_mamba8",
)
EXTRA = (
    "frjt16_lstm1",
    "frjt16_transformer8",
    "frjt16_mamba8",
)
