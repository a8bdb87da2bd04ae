# srcip-lab: the two commands the README promises, plus a few conveniences.
#   make run   - create .venv, install, run the comparison, write out/ (table + figures)
#   make test  - create .venv, install with dev extras, run ruff, mypy, pytest (+ nbval), mkdocs
# Both work on a fresh Debian machine with Python 3.11+.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out

export NO_MKDOCS_2_WARNING := 1
export PYTHONHASHSEED := 0

.PHONY: run test lint typecheck pytest docs docs-build lab notebooks lab-report bench clean venv

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "srcip-lab needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "python3 -m venv failed: installing Debian's python3-venv"; \
	    apt-get install -y -qq python3-venv >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }; \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python3 -m venv failed: on Debian run 'sudo apt-get install python3-venv' first" >&2; exit 1; \
	  fi; }
	@$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-dev

run: $(VENV)/.installed-run
	$(BIN)/srcip-lab compare --out $(OUT)

test: $(VENV)/.installed-dev lint typecheck pytest docs-build

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/ruff format --check sim tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

docs-build: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict --quiet

docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs serve

lab: $(VENV)/.installed-dev
	$(BIN)/jupyter lab notebooks/

# Re-execute the tutorials, drop the cells' execution timing and stamp each notebook with the
# hash of the figure code it used (tests/test_notebook_figures.py checks it). One notebook:
# make notebooks NOTEBOOKS=notebooks/03_metallb_failover.ipynb
NOTEBOOKS ?= notebooks/[0-9]*.ipynb
notebooks: $(VENV)/.installed-dev
	$(BIN)/python -m sim.viz.renotebook $(NOTEBOOKS)

# The real-kernel lab's report (docs/reference/lab-report.md + .png): needs root (netns).
lab-report: $(VENV)/.installed-dev
	@[ "$$(id -u)" = 0 ] || { echo "make lab-report needs root (network namespaces)" >&2; exit 2; }
	$(BIN)/python -m sim.lab.report docs/reference

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_codec.py
	$(BIN)/python benchmarks/bench_sim.py

clean:
	rm -rf $(VENV) $(OUT) site .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
