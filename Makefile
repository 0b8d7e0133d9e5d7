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
# The installer's full log of the last install; the terminal shows one line per step.
INSTALL_LOG := $(VENV)/install.log
EXTRAS      ?= lab,test,site
# Who installs into the venv: uv (pip installs it into the venv from the package index, then uv installs the
# workbook in seconds instead of pip's minute), or INSTALLER=pip for pip alone, the README's route without make.
# When uv cannot be installed or fails (e.g. an index only pip's own configuration knows), pip takes over.
INSTALLER   ?= uv
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --log $(INSTALL_LOG)
UV_INSTALL  := $(BIN)/uv pip install --python $(BIN)/python
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
	@case "$(INSTALLER)" in uv|pip) ;; *) echo "error: INSTALLER=$(INSTALLER); use uv or pip" >&2; exit 1;; esac
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: PYTHON=$(PYTHON) is not a command" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "error: Python >= 3.10 is required; $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || { echo "make: creating $(VENV) with $$($(PYTHON) -c 'import sys; print("Python", sys.version.split()[0])')"; \
	  $(PYTHON) -m venv $(VENV); } || { \
	  echo "error: '$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	@echo "make: installing the workbook and its dependencies into $(VENV) with $(INSTALLER) (log: $(INSTALL_LOG))"
	@start=$$SECONDS; rm -f $(INSTALL_LOG); installer=$(INSTALLER); \
	if [ $$installer = uv ] && ! $(PIP_INSTALL) --quiet uv >/dev/null 2>&1; then \
	  echo "make: pip could not install uv, so pip installs the workbook (minutes the first time)"; installer=pip; fi; \
	if [ $$installer = uv ]; then \
	  $(UV_INSTALL) -e ".[$(EXTRAS)]" 2>&1 | tee -a $(INSTALL_LOG) \
	    | awk '/^(Resolved|Prepared|Installed|Uninstalled) / { print "  " tolower(substr($$0, 1, 1)) substr($$0, 2); fflush() }' \
	    || { echo "make: uv failed (its output is in $(INSTALL_LOG)), so pip installs the workbook instead"; \
	         installer=pip; }; fi; \
	if [ $$installer = pip ]; then \
	$(PIP_INSTALL) -e ".[$(EXTRAS)]" 2>&1 \
	  | awk '/^(Collecting|Requirement already satisfied|Obtaining)/ { if (!n++) printf "  resolving "; printf "."; fflush(); next } \
	         /^Installing collected packages:/ { i = 1; printf "\n  installing %d packages\n", split(substr($$0, 32), p, ", "); fflush(); next } \
	         /^(ERROR|error):/ { e = 1 } \
	         e { print > "/dev/stderr" } \
	         END { if (n && !i) print "" }' \
	  || { echo "error: pip could not install the workbook into $(VENV); the full log is $(INSTALL_LOG)" >&2; exit 1; }; \
	fi; \
	echo "make: $(VENV) is ready ($$((SECONDS - start)) s with $$installer)"
	@touch $(STAMP)

# Byte-compile the venv after an install: uv does not (pip does), and then every new Python process, such as each
# notebook's kernel, compiles what it imports, every time when PYTHONDONTWRITEBYTECODE is set. test, bench and site
# wait for it; lab starts JupyterLab at once and compiles beside it, at low priority.
BYTECODE    := $(VENV)/.bytecode-stamp
COMPILE_ALL := $(BIN)/python -m compileall -q -j 0 \
               "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1

$(BYTECODE): $(STAMP)
	@echo "make: byte-compiling $(VENV)"
	@$(COMPILE_ALL); touch $@

lab: $(STAMP)
	@test $(BYTECODE) -nt $(STAMP) || { (nice -n 10 $(COMPILE_ALL); touch $(BYTECODE)) & }
	$(BIN)/jupyter lab --config=$(LAB_CONFIG) $(ALLOW_ROOT) $(LAB_ARGS)

# One pytest run, so its closing line counts unit, doctest, notebook, browser and site tests together.
test: $(BYTECODE)
	$(BIN)/ruff check src tests benchmarks notebooks docs
	$(BIN)/python -m pytest tests --doctest-modules src/aurora_sim $(NBMAKE) $(PYTEST_ARGS)

bench: $(BYTECODE)
	$(BIN)/python benchmarks/run.py

# The rendered book: every notebook executed once, then Sphinx + myst-nb into build/site/ (open build/site/index.html).
site: $(BYTECODE)
	$(BIN)/python docs/build_site.py

# The shared PostgreSQL (aurora_sim.realdb) outlives notebooks and tests on purpose; clean stops it first.
clean:
	-test -x $(BIN)/python && $(BIN)/python -m aurora_sim.realdb stop
	rm -rf $(VENV) .venv-3.* build .pytest_cache .ruff_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
