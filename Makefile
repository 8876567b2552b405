# netspec. The two set-up commands (each creates .venv when it is missing):
#   make demo   the main job on the shipped default: train specs/digits.yaml, export it (verified), then
#               predict shipped digit images with the export and evaluate Keras vs ONNX vs int8
#   make test   the whole test suite
# Others: make train / make export / make use (the three parts of demo), make schema, make docs, make bench.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.netspec-installed
export TF_CPP_MIN_LOG_LEVEL ?= 3

DEMO_SPEC := specs/digits.yaml
DEMO_RUN  := runs/digits

.PHONY: venv demo train export use test schema docs bench bench-export bench-train bench-zoo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,export,plot,openvino]'
	$(BIN)/python -m compileall -q netspec  # bytecode even where PYTHONDONTWRITEBYTECODE is set: validate starts 40% faster
	touch $(STAMP)

venv: $(STAMP)

demo: train export use

# Trains specs/digits.yaml on the shipped UCI digits (data/README.md); the best model is written to
# runs/digits/best.keras.
train: $(STAMP)
	$(BIN)/netspec train $(DEMO_SPEC) --run-dir $(DEMO_RUN)
	@echo "best model: $(DEMO_RUN)/best.keras"

# Exports the trained model with its verified onnx-cpu and onnx-int8 targets (trains first if there is no model).
export: $(STAMP)
	test -f $(DEMO_RUN)/best.keras || $(MAKE) train
	$(BIN)/netspec export $(DEMO_SPEC) --weights $(DEMO_RUN)/best.keras --target onnx-cpu -o out/digits.onnx
	$(BIN)/netspec export $(DEMO_SPEC) --weights $(DEMO_RUN)/best.keras --target onnx-int8 -o out/digits-int8.onnx

# Uses the exports: what the ONNX file carries (its contract: uint8 grayscale, resized, scaled 0..255 ->
# 0..16; labels 0..9), labels for the shipped digit images (data/digits-samples, held out from training)
# through that contract, then accuracy of the Keras model, the ONNX file and its int8 version side by side
# on the held-out digits.
use: $(STAMP)
	test -f out/digits-int8.onnx || $(MAKE) export
	$(BIN)/netspec inspect out/digits.onnx
	$(BIN)/netspec predict out/digits.onnx data/digits-samples/*.png --top-k 3
	$(BIN)/netspec evaluate $(DEMO_RUN)/best.keras out/digits.onnx out/digits-int8.onnx --spec specs/digits.yaml

# The YAML language server that tests/test_editor.py runs (pinned by package-lock.json).
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Two workers (pytest-xdist), one per core of the machines CI runs on; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

schema: $(STAMP)
	$(BIN)/python -m netspec.devtools.schemagen
	$(BIN)/python -m netspec.devtools.docgen

docs: $(STAMP)
	$(BIN)/python -m netspec.devtools.docgen

bench: $(STAMP)
	$(BIN)/python bench/validate_speed.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/build_vs_keras.py
	$(BIN)/python bench/train_throughput.py

bench-export: $(STAMP)
	$(BIN)/python bench/export_bench.py mobilenet_v2 resnet50 EfficientNetB0
	$(BIN)/python bench/runtime_latency.py mobilenet_v2 resnet50

# Every keras.applications model imported and exported to onnx-cpu, onnx-int8 and litert: docs/zoo.md.
# Hours; resumable (results cached per model in bench/zoo-results.json). ZOO_ARGS="--models A,B" etc.
bench-zoo: $(STAMP)
	$(BIN)/python bench/zoo.py $(ZOO_ARGS)

bench-train: $(STAMP)
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf out runs .pytest_cache
