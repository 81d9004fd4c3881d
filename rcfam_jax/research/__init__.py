"""Research tools built on the core: benchmarks, scaling studies, synthetic depth tasks and their
baselines, evaluation and closed-loop rollouts. A training job imports none of them."""
