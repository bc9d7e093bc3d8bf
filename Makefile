# mailtide developer targets (GNU make). `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the project's metadata changed.
STAMP := $(VENV)/.mailtide-installed

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_ROOT_USER_ACTION := ignore
export PYTHON

.DEFAULT_GOAL := help
.PHONY: help deps venv test lint typecheck pytest torture demo bench clean

help:
	@echo "make demo       private Dovecot + sample mail, synced into ./demo/Mail"
	@echo "make test       deps + venv, then lint, typecheck and the test suite (what CI runs)"
	@echo "make torture    the slow tiers make test leaves out (pytest -m slow), e.g. 1,000 kill -9 trials"
	@echo "make lint       ruff check, and the import layering (lint-imports)"
	@echo "make typecheck  mypy"
	@echo "make bench      one-shot sync speed against mbsync and OfflineIMAP (needs ../shared/lab; bench/README.md)"
	@echo "make deps       install the Debian packages the tests need (as root)"
	@echo "make venv       create $(VENV) and install mailtide with its test extras"
	@echo "make clean      remove $(VENV), demo/ and caches"

deps:
	@bash scripts/deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@py=$(PYTHON); [ -x $(BIN)/python ] && py=$(BIN)/python; \
	$$py -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "mailtide needs Python >= 3.11; '$$py' is $$($$py --version 2>/dev/null || echo 'not found')." >&2; \
	  echo "Install python3.11 (Debian 12 has it) or run: make PYTHON=/path/to/python3.11 ..." >&2; \
	  echo "(an old $(VENV) goes away with: make clean)" >&2; \
	  exit 1; }
	@if [ ! -x $(BIN)/python ]; then \
	  echo "creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "could not create $(VENV): on Debian run 'make deps' as root, or apt-get install python3-venv" >&2; \
	    rm -rf $(VENV); exit 1; }; \
	fi
	@echo "installing mailtide and its test extras into $(VENV)"
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

# lint-imports: the layering contract of design.md, kept in pyproject.toml [tool.importlinter].
lint: venv
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/lint-imports --no-cache

typecheck: venv
	$(BIN)/mypy

# The suite runs on PYTEST_WORKERS xdist workers, each with servers of its own (Dovecot, Courier,
# the fake servers; ports, temp and runtime dirs of its own): it spends most of its time waiting
# (timers, servers, subprocesses), about a quarter of it computing, so more workers than cores
# pay off. --dist loadgroup keeps tests marked xdist_group("name") on one worker.
PYTEST_WORKERS ?= 4

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
pytest: venv
	@rc=0; MAILTIDE_REQUIRE_SERVERS=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
	  -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating that as a failure" >&2; exit 1; fi; \
	exit $$rc

# The slow tiers `make test` leaves out (pytest -m slow), with their counts printed (-s);
# MAILTIDE_TORTURE_TRIALS=N sets the number of kill -9 trials (default 1000).
torture: venv
	@rc=0; MAILTIDE_REQUIRE_SERVERS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m slow -s --timeout=14400 || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treating that as a failure" >&2; exit 1; fi; \
	exit $$rc

# Serial on purpose: deps may install what venv needs (python3-venv), and the
# pytest summary must stay the last line printed.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory typecheck
	@$(MAKE) --no-print-directory pytest

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	@bash scripts/demo.sh

bench: venv
	@bash bench/run.sh

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
	find src tests scripts bench -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
