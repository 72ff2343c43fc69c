# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow test-all lint bench-prepare bench-train bench-pointcloud \
	bench-implicit bench-inference venv-bpy42 train-smoke bundled-models bundled-segmentation \
	examples addon clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[data,test]"
	touch $(STAMP)

# Reconstructs the pictures in examples/ with both bundled models: meshes, point clouds and
# preview PNGs in out/demo/.
EXAMPLES := $(wildcard examples/*.png examples/*.jpg)
demo: $(STAMP)
	$(BIN)/recon3d models
	-$(BIN)/recon3d reconstruct $(EXAMPLES) --model implicit --output-dir out/demo/implicit
	-$(BIN)/recon3d reconstruct $(EXAMPLES) --model pointcloud --output-dir out/demo/pointcloud
	@echo "Results and *_preview.png in out/demo/implicit and out/demo/pointcloud"

# The bundled models from scratch: download and prepare the data, train both models side by
# side (one core each), evaluate them on the test split beside the retrieval baseline, and
# write fp16 weights, metrics and credits to blender_addon/models/; then train the viewpoint
# estimator the colours use and attach it to both.
DATA := data
RUNS := runs
bundled-models: $(STAMP)
	$(BIN)/python -m training.data.prepare --source sweethome3d --out $(DATA)/sweethome3d
	$(BIN)/python -m training.data.prepare --source procedural --count 20 --out $(DATA)/procedural
	$(BIN)/python -m training.data.combine $(DATA)/sweethome3d $(DATA)/procedural --out $(DATA)/bundled
	OMP_NUM_THREADS=1 $(BIN)/python -m training.train --method implicit --preset implicit-bundled \
		--data $(DATA)/bundled --out $(RUNS)/implicit-bundled --no-progress & \
	OMP_NUM_THREADS=1 $(BIN)/python -m training.train --method pointcloud \
		--preset pointcloud-bundled --data $(DATA)/bundled --out $(RUNS)/pointcloud-bundled \
		--no-progress & \
	wait
	$(BIN)/python -m training.bundle --run $(RUNS)/implicit-bundled --name implicit \
		--data $(DATA)/sweethome3d --train-data $(DATA)/bundled --out blender_addon/models
	$(BIN)/python -m training.bundle --run $(RUNS)/pointcloud-bundled --name pointcloud \
		--data $(DATA)/sweethome3d --train-data $(DATA)/bundled --out blender_addon/models
	$(BIN)/python -m training.viewpoint --data $(DATA)/bundled --eval-data $(DATA)/sweethome3d \
		--attach blender_addon/models/implicit.safetensors \
		--attach blender_addon/models/pointcloud.safetensors

# The bundled segmentation network: the EfficientNet-Lite0 U-Net trained from its ImageNet
# encoder on photo-like pictures of the training renders (about 70 minutes on 2 cores; run
# after bundled-models prepared the data).
bundled-segmentation: $(STAMP)
	$(BIN)/python -m training.train_segmentation --data $(DATA)/bundled \
		--out $(RUNS)/segmentation
	cp $(RUNS)/segmentation/lite0-unet.safetensors blender_addon/models/segmentation/network.safetensors

# The example pictures (renders of test-split shapes; needs the prepared Sweet Home 3D data).
examples: $(STAMP)
	$(BIN)/python -m training.tools.examples --data $(DATA)/sweethome3d --out examples

# A few hundred CPU steps of each method on a tiny procedural dataset (a few minutes).
SMOKE := out/smoke
train-smoke: $(STAMP)
	$(BIN)/python -m training.data.prepare --source procedural --categories chair table --count 4 \
		--views 4 --novel-views 8 --occupancy-resolution 128 --occupancy-points 40000 \
		--surface-points 20000 --out $(SMOKE)/data
	rm -rf $(SMOKE)/implicit $(SMOKE)/pointcloud
	$(BIN)/python -m training.train --method implicit --preset implicit-smoke \
		--data $(SMOKE)/data --out $(SMOKE)/implicit
	$(BIN)/python -m training.train --method pointcloud --preset pointcloud-smoke \
		--data $(SMOKE)/data --out $(SMOKE)/pointcloud
	$(BIN)/python -m training.reports.smoke_report $(SMOKE)/implicit $(SMOKE)/pointcloud

# The oldest supported Blender (4.2 LTS) as a Python module, for the add-on tests; it has no
# torch, so the add-on runs its worker in .venv's Python there.
VENV42 := .venv-bpy42
STAMP42 := $(VENV42)/.installed
venv-bpy42: $(STAMP42)
$(STAMP42):
	test -x $(VENV42)/bin/python || $(PYTHON) -m venv $(VENV42)
	$(VENV42)/bin/python -m pip install --quiet "bpy==4.2.23" "numpy<2"
	touch $(STAMP42)

test: $(STAMP) $(STAMP42)
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

# Extraction needs a trained decoder and a picture: the bundled model on the first record of
# the prepared Sweet Home 3D data (make bundled-models prepares it).
bench-implicit: $(STAMP)
	$(BIN)/python benchmarks/bench_implicit.py --model blender_addon/models/implicit.safetensors \
		--data $(DATA)/sweethome3d --repeats 2

bench-inference: $(STAMP)
	$(BIN)/python benchmarks/bench_inference.py

addon: $(STAMP)
	$(BIN)/python build_addon.py

clean:
	rm -rf out build dist .pytest_cache
