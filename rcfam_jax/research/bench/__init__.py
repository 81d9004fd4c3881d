"""Benchmark workers behind `python -m rcfam_jax.research.bench` (docs/BENCHMARKS.md §4).

Each worker runs in its own process (so the allocator's peak memory is its own), reads one JSON
job and prints one JSON line per measurement:
  common      configs from field=value overrides, timing, matmul peak, memory figures;
  step        training-step throughput / MFU / peak memory / data feed / head-chunk sweep, and
              compile-only memory analysis for very long T;
  lstm_micro  one LSTM layer forward+backward per variant (unroll, remat).
"""
