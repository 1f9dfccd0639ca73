# Two entry points for newcomers: `make demo` and `make test`. Both create .venv idempotently.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test soak reliability lint bench clean chromium install-lake test-lake

install: $(STAMP)

# torch first: any spec admitting a newer release pulls a multi-GB CUDA build (STACK.md).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/flywheel demo

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Memory bound on a generated ~1 GiB log (written to a temp dir, never committed): peak RSS of the
# whole `flywheel ingest` process tree, checked against SOAK_MAX_RSS_MIB. See RELIABILITY.md.
SOAK_GIB ?= 1.0
SOAK_MAX_RSS_MIB ?= 2048
soak: install
	$(BIN)/python -m tests.reliability.soak_ingest --gib $(SOAK_GIB) --max-rss-mib $(SOAK_MAX_RSS_MIB)

# The reliability suite alone (it also runs in `make test`), printing its figures.
reliability: install
	$(BIN)/python -m pytest -q tests/reliability $(PYTEST_ARGS)

# The dashboard's browser test drives Debian's chromium (/usr/bin/chromium), never `playwright install`.
# Installed where apt-get and root are available; elsewhere that test skips and the build goes on.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  ( [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null ) || \
	  echo "chromium not installed: the dashboard browser test will skip" >&2

# The DuckLake warehouse (README "Shared warehouse: DuckLake") in its own venv: PyPI ships DuckDB's
# extensions for duckdb 1.5.5 at the newest, so this is constraints.txt with duckdb moved to 1.5.5.
# test-lake runs the same loop on a lake (SQLite catalog; Postgres too where Debian's is installed).
LAKE_VENV := .venv-lake
LAKE_BIN := $(LAKE_VENV)/bin
LAKE_STAMP := $(LAKE_VENV)/.installed
LAKE_DUCKDB := 1.5.5

install-lake: $(LAKE_STAMP)

$(LAKE_STAMP): pyproject.toml constraints.txt
	test -x $(LAKE_BIN)/python || $(PY) -m venv $(LAKE_VENV)
	$(LAKE_BIN)/pip install -q --upgrade pip
	$(LAKE_BIN)/pip install -q torch==2.13.0
	sed 's/^duckdb==.*/duckdb==$(LAKE_DUCKDB)/' constraints.txt > $(LAKE_VENV)/constraints.txt
	$(LAKE_BIN)/pip install -q -c $(LAKE_VENV)/constraints.txt -e ".[dev,lake]"
	touch $(LAKE_STAMP)

test-lake: install-lake
	FLYWHEEL_REQUIRE_LAKE=1 $(LAKE_BIN)/python -m pytest -q tests/store/test_lake.py tests/store/test_lake_loop.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .flywheel .pytest_cache
