"""Research tools built on the core: benchmarks, scaling studies, synthetic depth tasks and their
baselines, evaluation and closed-loop rollouts, and the model in PyTorch for the speed comparison
(torch_fbam; torch is an optional extra). A training job imports none of them."""
