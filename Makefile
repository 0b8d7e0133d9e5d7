# The workbook's entry points: make lab · make test · make bench · make site.
# Each one first creates or refreshes .venv, re-installing only when pyproject.toml changed since the last install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

# JupyterLab refuses to start as root unless told; containers and CI often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=
PYTEST_ARGS ?=

# nbmake errors on a missing path, so pass notebooks only once there are some.
NOTEBOOKS := $(wildcard notebooks/*.ipynb)
NBMAKE    := $(if $(NOTEBOOKS),--nbmake $(NOTEBOOKS))

.PHONY: lab test bench site venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is required; $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/pip install --disable-pip-version-check -e ".[lab,test,site]"
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

# One pytest run, so its closing line counts unit, doctest, notebook, browser and site tests together.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks docs
	$(BIN)/python -m pytest tests --doctest-modules src/aurora_sim $(NBMAKE) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The rendered book: every notebook executed once, then Sphinx + myst-nb into build/site/ (open build/site/index.html).
site: $(STAMP)
	$(BIN)/python docs/build_site.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
