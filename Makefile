# rcfam_jax: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEQ_LENS ?= 128,512,2048
BENCH_ARGS ?=

.PHONY: install test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m pytest -q tests

# One full training step (fwd, bwd, optimizer) per T at the reference config; JSON lines.
bench: $(STAMP)
	$(PY) -m rcfam_jax.bench --seq-lens $(SEQ_LENS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
