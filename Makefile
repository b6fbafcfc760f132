# vaelab — two commands do all set-up on a fresh machine: `make train`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test test-slow test-full lint format clean-logs tensorboard

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

## Run the default experiment (seed 000's lecture VAE on MNIST). Extra Hydra overrides: make train ARGS="model.latent_dim=20"
train: $(STAMP)
	$(BIN)/vaelab-train $(ARGS)

## The fast test suite (slow real-data runs and jobs on a local SLURM cluster excluded).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not slurm" $(ARGS)

## The slow group alone: real-data runs, subprocesses, DDP, the wheel install (CI runs it after `test`).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow and not slurm" $(ARGS)

## Every test, the slow ones included.
test-full: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: $(STAMP)
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir logs
