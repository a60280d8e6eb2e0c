# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch comes first and pinned: these machines carry a local CPU build of 2.13.0 (an unpinned torch pulls GBs of CUDA).
TORCH ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test lint bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev,datasets,bench]"
	touch $@

## demo: generate text with the shipped model on the CPU, showing the refinement step by step
demo: $(VENV)/.installed
	$(BIN)/textdiffusion generate --model shakespeare-char --n 2 --length 256 --steps 64 --device cpu --show

## test: the test suite (about 5 minutes on 2 cores)
test: $(VENV)/.installed-dev
	HF_HOME=$$(mktemp -d) $(BIN)/python -m pytest -n 2 -q

## bench-quick: every CPU-sized benchmark (under 10 minutes on 2 cores); tables in bench/results/*-quick.md
bench-quick: $(VENV)/.installed-dev
	$(BIN)/python -m bench.speed --quick --threads 1
	$(BIN)/python -m bench.profile_step --quick --threads 1
	$(BIN)/python -m bench.likelihood --quick --threads 1
	$(BIN)/python -m bench.quality --quick --diffusion bench/runs/likelihood-quick/tiny-diffusion \
	    --ar bench/runs/likelihood-quick/tiny-ar --train-judge --threads 1
	$(BIN)/python -m bench.bench_particles --quick --threads 1
	$(BIN)/python -m bench.block_diffusion --quick --threads 1

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
