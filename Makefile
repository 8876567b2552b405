# netspec: `make demo` runs the main job on a shipped spec; `make test` runs the whole suite.
# Both create the virtual environment (.venv) when it is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.netspec-installed
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: venv demo test schema docs bench bench-export clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,export,plot]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/netspec validate specs/lenet5.yaml
	$(BIN)/netspec check specs/lenet5.yaml
	$(BIN)/netspec build specs/lenet5.yaml -o out/lenet5.keras

# The YAML language server that tests/test_editor.py runs (pinned by package-lock.json).
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -q

schema: $(STAMP)
	$(BIN)/python -m netspec.schemagen -o schemas/netspec.schema.json
	$(BIN)/python -m netspec.docgen

docs: $(STAMP)
	$(BIN)/python -m netspec.docgen

bench: $(STAMP)
	$(BIN)/python bench/validate_speed.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/build_vs_keras.py

bench-export: $(STAMP)
	$(BIN)/python bench/export_bench.py mobilenet_v2 resnet50

clean:
	rm -rf out .pytest_cache
