# netspec: `make demo` runs the main job on a shipped spec; `make test` runs the whole suite.
# Both create the virtual environment (.venv) when it is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.netspec-installed
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: venv demo test schema bench train bench-train clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,export]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/netspec validate specs/lenet5.yaml
	$(BIN)/netspec check specs/lenet5.yaml
	$(BIN)/netspec build specs/lenet5.yaml -o out/lenet5.keras

# Trains specs/digits.yaml on the shipped UCI digits (data/README.md); the best model is written to
# runs/digits/best.keras (a stable path for `make export`).
train: $(STAMP)
	$(BIN)/netspec train specs/digits.yaml --run-dir runs/digits
	@echo "best model: runs/digits/best.keras"

bench-train: $(STAMP)
	$(BIN)/python bench/train_throughput.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

schema: $(STAMP)
	$(BIN)/python -m netspec.schemagen -o schemas/netspec.schema.json

bench: $(STAMP)
	$(BIN)/python bench/validate_speed.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/build_vs_keras.py
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf out runs .pytest_cache
