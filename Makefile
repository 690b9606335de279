# Two commands do everything: `make lab` opens the course, `make test` runs every test.
# Each creates the virtual environment .venv on first use and re-installs when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.installed-browser
CHROMIUM ?= $(or $(CNNLAB_CHROMIUM),/usr/bin/chromium)
PORT   ?= 8888
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test test-other-machine test-unit test-notebooks test-browser present sync-notebooks student-edition assignments install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cnnlab needs Python 3.11 or newer, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,instructor]'
	touch $(STAMP)

install: $(STAMP)

# Playwright and Voila (the `browser` extra), for the browser tests and `make present`.
$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[browser]'
	touch $(BROWSER_STAMP)

## Open the course in JupyterLab (prints the URL; no browser is opened on a headless machine).
lab: $(STAMP)
	MPLBACKEND=module://ipympl.backend_nbagg $(BIN)/jupyter lab --notebook-dir=course --ip=127.0.0.1 --port=$(PORT) --no-browser $(ROOT_FLAG)

## Run every test: unit tests, the notebook pair check, and every notebook under nbval.
test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest

## The same tests as "another machine": one BLAS thread and another OpenBLAS kernel, so float32 sums round
## differently (as on a student's laptop). A kernel already set in the environment is kept: some machines
## need theirs for OpenBLAS to work at all; then only the thread count changes.
test-other-machine: $(STAMP)
	MPLBACKEND=Agg OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-Sandybridge} \
	  $(BIN)/python -m pytest

test-unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests

test-notebooks: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest course

## Browser tests (not part of `make test`): every notebook run in JupyterLab and the lecture demos in Voila,
## in Chromium (`apt-get install chromium`), driven by Playwright. Failures leave screenshots in tests/browser/artifacts/.
test-browser: $(BROWSER_STAMP)
	@test -x $(CHROMIUM) || { echo "Chromium not found at $(CHROMIUM): apt-get install chromium (or set CNNLAB_CHROMIUM)"; exit 1; }
	CNNLAB_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/browser

## Serve course/lecture_demos.ipynb with Voila as a dashboard for a lecture (prints the URL to open).
present: $(BROWSER_STAMP)
	cd course && MPLBACKEND=module://ipympl.backend_nbagg ../$(BIN)/voila lecture_demos.ipynb --no-browser --port=$(PORT) --Voila.ip=127.0.0.1

## Regenerate every course/*.ipynb from its reviewed twin course/*.py (no outputs), then normalise the .py.
sync-notebooks: $(STAMP)
	for py in course/*.py; do \
	  $(BIN)/jupytext --quiet --update --to ipynb "$$py" && $(BIN)/jupytext --quiet --to py:percent "$${py%.py}.ipynb" || exit 1; \
	done

## Write student-edition/: every lesson without its solution cells (exercises kept), with the self-checks (checks/).
student-edition: $(STAMP)
	$(BIN)/python -m widgets student-edition student-edition

## Write assignments/: an nbgrader course folder with every lesson as an assignment, released by nbgrader
## (release/), ready for `nbgrader autograde` (see README, "For instructors").
assignments: $(STAMP)
	$(BIN)/python -m widgets assignments assignments

clean:
	rm -rf $(VENV) .pytest_cache
