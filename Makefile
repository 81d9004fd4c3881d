# rcfam_jax: every target installs what it needs into .venv first (no network needed after).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXP ?= demo
WORKDIR ?= workdirs/$(EXP)
ARGS ?=
BENCH_ARGS ?= --data data/self_24x80   # add --compare-torch for compiled and eager PyTorch
DEPTH_ARGS ?=
EVAL_ARGS ?=
SCALING_SEQ_LENS ?= 2,16,128,512,2048
SCALING_ROOT ?= workdirs/scaling_$(EXP)
SCALING_ARGS ?=

.PHONY: install test format train data eval eval-closed-loop bench depth-bench depth-bench-variable scaling clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Lint and formatting (ruff, configured in pyproject.toml), then the whole suite on CPU, two
# test files at a time (pytest-xdist; a file's tests share one worker, so its module fixtures
# run once). CI runs exactly this.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	JAX_PLATFORMS=cpu $(PY) -m pytest -q -n 2 --dist loadfile tests

# Format the code and apply ruff's safe fixes (what `make test` checks).
format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Train (or resume) experiments/$(EXP).py into $(WORKDIR); builds its dataset on first use.
train: $(STAMP)
	$(PY) -m rcfam_jax.main --config experiments/$(EXP).py --workdir $(WORKDIR) $(ARGS)

# Build the dataset experiments/$(EXP).py names (sources: 'self', local clones, Git URLs);
# ARGS: the same --config.data.x=v overrides as for train.
data: $(STAMP)
	$(PY) -m rcfam_jax.data --config experiments/$(EXP).py $(ARGS)

# Teacher-forced loss / top-1 / top-5 of $(WORKDIR)'s newest checkpoint (one JSON line).
eval: $(STAMP)
	$(PY) -m rcfam_jax.research.evaluate --workdir $(WORKDIR) --mode teacher $(EVAL_ARGS)

# The model drives the editor on held-out commits: exact match, distance, asciicasts.
eval-closed-loop: $(STAMP)
	$(PY) -m rcfam_jax.research.evaluate --workdir $(WORKDIR) --mode closed-loop --cast-dir $(WORKDIR)/rollouts $(EVAL_ARGS)

# The training-step benchmark (throughput+MFU, data feed, LSTM, memory; with --compare-torch the
# PyTorch FBAM compiled and eager, torch installed first); JSON lines and a table.
bench: $(STAMP)
	$(if $(findstring --compare-torch,$(BENCH_ARGS)),$(PY) -m pip install -q -e '.[torch]')
	$(PY) -m rcfam_jax.research.bench $(BENCH_ARGS)

# Synthetic recurrence benchmarks (docs/DEPTH_BENCHMARK.md): every task x model in the
# fixed-length protocol (every row one length: depth apart from length), with the position
# ablation and the layer sweep (experiments/depth ABLATION), three configs at a time on the one
# device (--jobs), costliest first. DEPTH_ARGS=--resume finishes a sweep that was cut short;
# DEPTH_ARGS=--stop-after=S starts no config after S seconds.
depth-bench: $(STAMP)
	$(PY) -m rcfam_jax.research.tasks.sweep --preset=full --optional --ablation --protocol=fixed --jobs=3 --out=out/depth_bench/full_fixed --docs=docs/DEPTH_BENCHMARK.md $(DEPTH_ARGS)

# The variable-length protocol of the first H200 run (a row is as long as its depth needs).
depth-bench-variable: $(STAMP)
	$(PY) -m rcfam_jax.research.tasks.sweep --preset=full --optional --out=out/depth_bench/full --docs=docs/DEPTH_BENCHMARK.md $(DEPTH_ARGS)

# Sequence-length scaling sweep: train/resume one run per T, then fit (docs/SCALING.md).
scaling: $(STAMP)
	$(PY) -m rcfam_jax.research.scaling run --exp $(EXP) --seq-lens $(SCALING_SEQ_LENS) --root $(SCALING_ROOT) $(SCALING_ARGS)
	$(PY) -m rcfam_jax.research.scaling fit $(SCALING_ROOT)/T* --out $(SCALING_ROOT)/fit

clean:
	rm -rf $(VENV) .pytest_cache
