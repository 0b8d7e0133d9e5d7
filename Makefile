# The workbook's entry points: make lab · make test · make bench · make site.
# Each one first creates or refreshes .venv, re-installing only when pyproject.toml changed since the last install.
# With another Python, e.g. `make test PYTHON=python3.13`, each Python version gets a venv of its own (.venv-3.13).

# bash, with pipefail: the install pipes pip through a progress filter, and a failing pip must fail the recipe.
SHELL       := bash
.SHELLFLAGS := -o pipefail -c

ifdef PYTHON
VENV ?= .venv-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
else
PYTHON := python3
VENV   ?= .venv
endif
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
# pip's full, verbose log of the last install; the terminal shows one line per step and a dot per package.
INSTALL_LOG := $(VENV)/install.log
EXTRAS      ?= lab,test,site
# JupyterLab with the project's settings: opens on notebooks/00_start_here.ipynb, no "news" prompt (jupyter/).
LAB_CONFIG  := jupyter/jupyter_lab_config.py

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
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: PYTHON=$(PYTHON) is not a command" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is required; $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || { echo "make: creating $(VENV) with $$($(PYTHON) -c 'import sys; print("Python", sys.version.split()[0])')"; \
	  $(PYTHON) -m venv $(VENV); } || { \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	@echo "make: installing the workbook and its dependencies into $(VENV) (minutes the first time; log: $(INSTALL_LOG))"
	@start=$$SECONDS; rm -f $(INSTALL_LOG); \
	$(BIN)/python -m pip install --disable-pip-version-check --log $(INSTALL_LOG) -e ".[$(EXTRAS)]" 2>&1 \
	  | awk '/^(Collecting|Requirement already satisfied|Obtaining)/ { if (!n++) printf "  resolving "; printf "."; fflush(); next } \
	         /^Installing collected packages:/ { i = 1; printf "\n  installing %d packages\n", split(substr($$0, 32), p, ", "); fflush(); next } \
	         /^(ERROR|error):/ { e = 1 } \
	         e { print > "/dev/stderr" } \
	         END { if (n && !i) print "" }' \
	  || { echo "error: pip could not install the workbook into $(VENV); the full log is $(INSTALL_LOG)" >&2; exit 1; }; \
	echo "make: $(VENV) is ready ($$((SECONDS - start)) s)"
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --config=$(LAB_CONFIG) $(ALLOW_ROOT) $(LAB_ARGS)

# One pytest run, so its closing line counts unit, doctest, notebook, browser and site tests together.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks docs
	$(BIN)/python -m pytest tests --doctest-modules src/aurora_sim $(NBMAKE) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The rendered book: every notebook executed once, then Sphinx + myst-nb into build/site/ (open build/site/index.html).
site: $(STAMP)
	$(BIN)/python docs/build_site.py

# The shared PostgreSQL (aurora_sim.realdb) outlives notebooks and tests on purpose; clean stops it first.
clean:
	-test -x $(BIN)/python && $(BIN)/python -m aurora_sim.realdb stop
	rm -rf $(VENV) .venv-3.* build .pytest_cache .ruff_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
