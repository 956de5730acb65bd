# fashionseg: the two commands a user needs are `make study` and `make test`; `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRESET ?= demo
# the pretraining's first stage (preset pretrain), which the second (preset pretrain_joint) continues
FIRST_STAGE := weights/r50-gn-fpn-trunk.safetensors

.PHONY: help install pretrain study study-seeds test test-training test-fast lint format book clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install fashionseg with torch 2.14.1 / torchvision 0.29.1

pretrain: $(STAMP)  ## pretrain the trunk the study fine-tunes, in two stages (weights/; about 2 hours; resumes if killed)
	$(BIN)/fashionseg pretrain --preset pretrain --out $(FIRST_STAGE)
	$(BIN)/fashionseg pretrain --preset pretrain_joint

study: $(STAMP)  ## train and evaluate the three backbones on the embedded data, then build the book
	$(BIN)/fashionseg study --preset $(PRESET)

study-seeds: $(STAMP)  ## the study with three seeds per backbone (results/demo/seed-*/, about 3x make study's time)
	$(BIN)/fashionseg study --preset $(PRESET) --seeds 0,1,2

test: $(STAMP)  ## run the test suite (lint included)
	$(BIN)/ruff check src tests benchmarks scripts notebooks
	$(BIN)/ruff format --check src tests benchmarks scripts notebooks
	$(BIN)/python -m pytest -q -m "not training"

test-training: $(STAMP)  ## the long learning runs (R50-FPN overfits training images; minutes of CPU)
	$(BIN)/python -m pytest -q -m training

test-fast: $(STAMP)  ## the tests without the slow (training, notebook, browser) ones
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: $(STAMP)  ## ruff check and format check
	$(BIN)/ruff check src tests benchmarks scripts notebooks
	$(BIN)/ruff format --check src tests benchmarks scripts notebooks

format: $(STAMP)  ## apply ruff's formatter and fixes
	$(BIN)/ruff format src tests benchmarks scripts notebooks
	$(BIN)/ruff check --fix src tests benchmarks scripts notebooks

book: $(STAMP)  ## rebuild the book from the committed results
	$(BIN)/fashionseg book

clean:  ## remove the virtual environment and build outputs
	rm -rf $(VENV) _build
