# Two commands on a fresh machine (Debian's system Python refuses a bare `pip install`):
#   make run     set up ./.venv from the lock and run the embedded default (python app.py;
#                RUN_ARGS="--port 8000" passes options)
#   make test    set up ./.venv from the lock, then ruff, mypy and pytest on SQLite (in parallel)
# and, for maintainers:
#   make test-postgres   the same tests on PostgreSQL (TEST_DATABASE_URL)
#   make lock            recompile requirements.txt from requirements.in (pip-tools)
#
# The virtual environment is (re)installed whenever requirements.txt changes, with
# --require-hashes: exactly the locked versions of every package, indirect ones included.
# VENV=path uses another environment (.ci/run gives a fresh one per run).
# Neither needs npm: `npm ci` (package.json) adds axe-core and Lighthouse for the
# accessibility tests and bench/lighthouse.py, which skip or say so without them.

PYTHON ?= python3
VENV ?= .venv
PIP_TOOLS_VERSION ?= 7.6.2
LOCK_VENV ?= .venv-lock
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# In parallel (pytest-xdist): one worker per core, at most 4 (each takes its own database
# and Redis database numbers, tests/workers.py). PYTEST_ARGS="-q" runs serially.
PYTEST_ARGS ?= -q -n auto --maxprocesses=4
RUN_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements

.PHONY: run test test-postgres screenshots lock install clean-venv

install: $(STAMP)

# The stamp is newer than the lock once the lock is installed; a changed lock reinstalls.
$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: on Debian/Ubuntu, apt-get install python3-venv" >&2; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.txt
	@touch $@

run: $(STAMP)
	$(BIN)/python app.py $(RUN_ARGS)

# make itself exits 2 on any failure; pytest's own exit code (1 failures, 2 interrupted,
# 5 nothing collected...) is kept in $(PYTEST_RC) for .ci/run to pass on.
PYTEST_RC := $(VENV)/.pytest-exit-code
PYTEST = rm -f $(PYTEST_RC); $(BIN)/python -m pytest $(PYTEST_ARGS) \
	|| { rc=$$?; echo $$rc > $(PYTEST_RC); exit $$rc; }

test: $(STAMP)
	@rm -f $(PYTEST_RC)
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(PYTEST)

test-postgres: $(STAMP)
	export TEST_DATABASE_URL="$(TEST_DATABASE_URL)"; $(PYTEST)

# The operator's browser tests again, writing their screenshots into docs/img/operators/
# (docs/operators.md shows them).
screenshots: $(STAMP)
	SCANCHARGE_SCREENSHOTS=1 $(BIN)/python -m pytest -p no:randomly -q tests/e2e -k "operator or dashboard or people"

# Resolved against PyPI alone (no local wheel directories or extra indexes this machine's
# pip may be configured with), with every file's hash. Run it with the oldest Python 3.11
# the lock must serve (Debian 12's 3.11.2): packages needed only before a 3.11 point
# release (redis needs async-timeout below 3.11.3) are then locked too, harmless later.
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==$(PIP_TOOLS_VERSION); }
	env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
	  $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in

clean-venv:
	rm -rf $(VENV) $(LOCK_VENV)
