# tlcourse: `make lab` to learn, `make test` to check everything CI checks.
# POSIX shells (Linux, macOS, WSL/Git Bash on Windows). Windows without make: see README "Windows".
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LAB_OPTS ?=
NOTEBOOK_DIRS := $(sort $(dir $(wildcard notebooks/*.ipynb solutions/*.ipynb)))

.PHONY: setup lab demo ddp-demo info check test lint unit nbval sync exercises exercises-check \
	bench clean site nbval-solutions test-floors

setup: $(STAMP)

# Install once; again only when pyproject.toml changes. Torch comes from PyPI (or a local cache).
# tools/install.py installs with uv (a pip package; faster), under pip's own index, find-links
# and constraints settings, and falls back to pip; `make setup INSTALLER=pip` uses pip alone.
INSTALLER ?= uv
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install.py --installer $(INSTALLER)
	mkdir -p $(VENV)/share/jupyter/lab/settings/overrides.d
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.d/tlcourse.json
	touch $(STAMP)

LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d

# JupyterLab opens lesson 00; jupyter/overrides.json (no news pop-up, no update check) goes into
# the project's own environment, not your global JupyterLab settings. jupyter/lab.py adds
# --allow-root as root and --no-browser without a display (then prints the URL last); LAB_OPTS wins.
lab: $(STAMP)
	mkdir -p $(LAB_SETTINGS) && cp jupyter/overrides.json $(LAB_SETTINGS)/tlcourse.json
	$(BIN)/python jupyter/lab.py $(LAB_OPTS)

demo: $(STAMP)
	$(BIN)/python -m tlcourse demo

# The same demo as 2 processes on the CPU with PyTorch DDP (gloo); rank 0 prints the table.
ddp-demo: $(STAMP)
	TLCOURSE_DEVICE=cpu $(BIN)/torchrun --nproc_per_node=2 --master-addr=127.0.0.1 \
		--master-port=$${MASTER_PORT:-29500} -m tlcourse demo --out tlcourse_ddp_demo

info: $(STAMP)
	$(BIN)/python -m tlcourse info

# A contributor's quick check, about 3 min on 2 cores: the lints and the fast tests. What it
# leaves out runs in `make test`: tests marked `slow` (lessons, kernels, trainings, torchrun) and
# `browser` (Chromium), see [tool.pytest.ini_options] markers in pyproject.toml.
check: export TLCOURSE_OFFLINE = 1
check: export TLCOURSE_PROGRESS = $(CURDIR)/build/test-progress.json
check: $(STAMP) lint
	$(BIN)/python -m pytest tests -m "not slow and not browser"

# Everything CI runs. TLCOURSE_OFFLINE=1: never try to download weights (tests run offline).
test: export TLCOURSE_OFFLINE = 1
test: export TLCOURSE_PROGRESS = $(CURDIR)/build/test-progress.json
# Every notebook runs once: the lessons while `site` builds the website (a lesson that raises
# fails it), the solutions under nbval; `unit` then tests the built site (TLCOURSE_SITE_BUILT=1:
# as built, not built again) and JupyterLab in headless Chromium (tests/test_site.py,
# tests/test_lab_browser.py; they fail without Chromium), and checks exercises/ against a fresh
# generation (tests/test_exercises.py runs `make exercises-check`'s script).
test: export TLCOURSE_SITE_BUILT = 1
test: $(STAMP) lint site unit nbval-solutions

# The floors run: its own venv with the LOWEST version pyproject.toml allows of every direct
# dependency (uv's --resolution lowest-direct), on the oldest Python we support when it is there
# (python3.10), then the fast tests and every lesson and solution under nbval. tools/floors.py
# stops the run if any package is above its floor (a floor with no build for that Python).
# tests/test_floors_planted.py shows the run catches code newer than a floor: a lesson copy with
# a planted torch.accelerator call (torch 2.6+) fails under the floors venv.
# --compile-bytecode: .pyc files at install, as pip writes them (PYTHONDONTWRITEBYTECODE=1 in CI).
FLOORS_VENV ?= .venv-floors
FLOORS_PYTHON ?= $(shell for p in python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) \
	$(PYTHON); do $$p -V >/dev/null 2>&1 && command -v $$p && break; done)
test-floors: export TLCOURSE_OFFLINE = 1
test-floors: export TLCOURSE_PROGRESS = $(CURDIR)/build/floors-progress.json
test-floors: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv>=0.4"
	rm -rf $(FLOORS_VENV)
	$(BIN)/uv venv -q --python $(FLOORS_PYTHON) $(FLOORS_VENV)
	$(BIN)/uv pip install -q --python $(FLOORS_VENV)/bin/python --resolution lowest-direct \
		--compile-bytecode -e '.[dev]'
	$(BIN)/python tools/floors.py $(FLOORS_VENV)/bin/python
	TLCOURSE_FLOORS_PYTHON=$(FLOORS_VENV)/bin/python $(BIN)/python -m pytest -p no:cacheprovider \
		tests/test_floors_planted.py
	$(FLOORS_VENV)/bin/python -m pytest -p no:cacheprovider tests -m "not slow and not browser"
	$(FLOORS_VENV)/bin/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/ solutions/

# tools/check_claims.py: every number in a lesson's prose is printed, asserted or computed by a
# nearby code cell, and no development notes ("this machine", issue numbers) reach the learner.
# tools/check_selection.py: no lesson, solution or exercise chooses anything on the test set.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/check_claims.py
	$(BIN)/python tools/check_selection.py

unit: $(STAMP)
	$(BIN)/python -m pytest tests

# Notebooks run top to bottom exactly as learners run them; their asserts are the checks.
nbval: $(STAMP)
	@if [ -z "$(NOTEBOOK_DIRS)" ]; then echo "nbval: no notebooks yet"; exit 1; fi
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOK_DIRS)

# `make test` runs the lessons through `make site` (below), so nbval here is the solutions only.
nbval-solutions: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg solutions/

# The course as a website in _build/site/ (site/conf.py, site/_toc.yml): the README, the lessons
# with their outputs, the blank exercises, docs/ and an API reference from the docstrings. Lessons
# run once and are cached in _build/jupyter_cache (re-run when they or tlcourse/ change); a
# lesson that raises, a broken cross-reference or a missing image fails the build. Offline.
site: export TLCOURSE_OFFLINE = 1
site: $(STAMP)
	$(BIN)/python -m sphinx -b html -c site -d _build/doctrees -W --keep-going . _build/site
	@echo "The course as a website: open _build/site/index.html"

# exercises/ is generated from solutions/ (### BEGIN/END SOLUTION blocks -> NotImplementedError),
# and the table of exercises/README.md from the checks modules in tlcourse/grading/checks/,
# by tools/generate_exercises.py (repository tooling, not part of the installed package).
exercises: $(STAMP)
	$(BIN)/python tools/generate_exercises.py

# CI: exercises/ and its README table must equal a fresh generation, and every solution must
# have a checks module and back (the message names the missing file).
exercises-check: $(STAMP)
	$(BIN)/python tools/generate_exercises.py --check

# Benchmarks, about 30 min on 2 cores (section 4, lesson 06's race, ~13 min of it): writes docs/benchmarks.md + docs/bench_*.png.
# BENCH_QUICK=1 make bench: tiny sizes in a few minutes, a smoke test (the report says so).
bench: export TLCOURSE_OFFLINE = 1
bench: $(STAMP)
	$(BIN)/python -m benchmarks

# After editing a notebook's .py or .ipynb: bring its pair up to date (outputs stripped).
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.ipynb $(wildcard solutions/*.ipynb)
	$(BIN)/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb $(wildcard solutions/*.ipynb)

clean:
	rm -rf $(VENV) tlcourse_demo tlcourse_ddp_demo .pytest_cache
