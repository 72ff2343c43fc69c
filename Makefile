# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow test-all lint bench-prepare clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[data,test]"
	touch $(STAMP)

# Builds a small procedural dataset and renders a preview sheet of it into out/.
demo: $(STAMP)
	$(BIN)/python -m training.prepare --source procedural --count 1 --out out/demo-dataset
	$(BIN)/python -m training.preview out/demo-dataset --out out/demo-preview.png
	@echo "Open out/demo-preview.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check recon_core training tests benchmarks build_addon.py

bench-prepare: $(STAMP)
	$(BIN)/python benchmarks/bench_prepare.py

clean:
	rm -rf out build dist .pytest_cache
