"""The training-step benchmark, `python -m rcfam_jax.research.bench` (docs/BENCHMARKS.md §4).

cli (the driver, its parts and the summary table; report formats it) starts one child process
per measurement (runner), so that each allocator peak is its own; a child runs one worker on one
JSON job and prints one JSON line per measurement:
  common      configs from field=value overrides, timing, matmul peak, memory figures;
  step        training-step throughput / MFU / peak memory / data feed / head-chunk sweep, and
              compile-only memory analysis for very long T;
  lstm_micro  one LSTM layer forward+backward per variant (unroll, remat);
  breakdown   the frame head's parts, one head chunk.
scaleout: the step on one device against all N (`python -m rcfam_jax.research.bench.scaleout`).
"""
