# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow test-all lint bench-prepare bench-train bench-pointcloud \
	train-smoke addon clean

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

# A few hundred CPU steps of each method on a tiny procedural dataset (a few minutes).
SMOKE := out/smoke
train-smoke: $(STAMP)
	$(BIN)/python -m training.prepare --source procedural --categories chair table --count 4 \
		--views 4 --novel-views 8 --occupancy-resolution 128 --occupancy-points 40000 \
		--surface-points 20000 --out $(SMOKE)/data
	rm -rf $(SMOKE)/implicit $(SMOKE)/pointcloud
	$(BIN)/python -m training.train --method implicit --preset implicit-smoke \
		--data $(SMOKE)/data --out $(SMOKE)/implicit
	$(BIN)/python -m training.train --method pointcloud --preset pointcloud-smoke \
		--data $(SMOKE)/data --out $(SMOKE)/pointcloud
	$(BIN)/python -m training.smoke_report $(SMOKE)/implicit $(SMOKE)/pointcloud

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check recon_core training tests benchmarks blender_addon build_addon.py

bench-prepare: $(STAMP)
	$(BIN)/python benchmarks/bench_prepare.py

bench-train: $(STAMP)
	$(BIN)/python benchmarks/bench_train.py

bench-pointcloud: $(STAMP)
	$(BIN)/python benchmarks/bench_pointcloud.py

addon: $(STAMP)
	$(BIN)/python build_addon.py

clean:
	rm -rf out build dist .pytest_cache
