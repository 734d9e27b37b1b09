# Retention analytics: `make report` for this month's report on the demo shop, `make test` for the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := data/raw/demo
KERNEL := retention

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (retention)" >/dev/null
	@touch $(STAMP)

## setup: create .venv and install the pinned versions from requirements.lock
setup: $(STAMP)

# the demo shop is rebuilt when its generator changes (a changed demo.py makes a different shop)
$(DEMO)/orders.csv: src/helpers/demo.py | $(STAMP)
	$(BIN)/retention demo --out $(DEMO)
	@touch $@

## demo: generate the demo shop in data/raw/demo (if missing or older than src/helpers/demo.py)
demo: $(DEMO)/orders.csv

## report: run every notebook for the latest complete month of the demo shop (HTML in reports/)
report: setup demo
	$(BIN)/retention run --raw $(DEMO)

# pytest: `make test PYTEST_ARGS="--lf"` passes options on (-k, --lf, --durations=25, -x ...)
PYTEST := $(BIN)/python -m pytest
PYTEST_ARGS ?=
# two workers (pytest-xdist), each taking a whole test file at a time (its module fixtures made once) and
# all notebooks in order on one worker (tests/conftest.py's scheduler); WORKERS=0 runs in this process
WORKERS ?= 2
XDIST := $(if $(filter 0,$(WORKERS)),-p no:xdist,-n $(WORKERS))
NBVAL := notebooks --nbval --sanitize-with tests/nbval_sanitize.cfg

## test: unit tests and nbval over the committed notebooks in one pytest start-up on two workers, then the demo month's artifacts
test: setup demo
	$(PYTEST) tests $(NBVAL) $(XDIST) -q $(PYTEST_ARGS)
	$(PYTEST) tests -q -m demo_month -p no:xdist $(PYTEST_ARGS)

## test-slow: what cannot be fast (JupyterLab as root, SIGTERM, two months at once, the whole CDNOW log, the seasonal, homogeneous and Pareto/NBD shops' and the WooCommerce export's months, a month through retention run)
test-slow: setup demo
	$(PYTEST) tests -m slow $(XDIST) -q $(PYTEST_ARGS)

SPARK_STAMP := $(VENV)/.installed-spark

$(SPARK_STAMP): requirements-spark.lock $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-spark.lock
	@touch $(SPARK_STAMP)

AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)
# Java 17 from Debian's packages only when `java -version` is missing or older (CI: root on a fresh Debian)
JAVA_VERSION = $(shell java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)

## spark-setup: what make test-spark needs: pyspark (requirements-spark.lock) and Java 17 when missing
spark-setup: setup $(SPARK_STAMP)
	@if [ -z "$(JAVA_VERSION)" ] || [ "$(JAVA_VERSION)" -lt 17 ]; then \
		echo "Java 17 not found (java -version: $(or $(JAVA_VERSION),none)); installing openjdk-17-jre-headless"; \
		$(AS_ROOT) mkdir -p /usr/share/man/man1; \
		$(AS_ROOT) apt-get update -qq && $(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; \
	fi

## test-spark: spark-setup, then every stage on DuckDB and on Spark local[2], artifacts compared
test-spark: spark-setup
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(PYTEST) tests/test_spark_parity.py -q -m spark -p no:xdist $(PYTEST_ARGS)

## notebooks: re-execute the notebooks in place on the demo shop to refresh their stored outputs
notebooks: setup demo
	$(BIN)/python -m helpers.cli refresh-notebooks

# Jupyter refuses to start as root ("Running as root is not recommended"), which is how many
# containers run: there, pass --allow-root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

## lab: start JupyterLab with the project's kernel (also as root, e.g. in a container)
lab: setup demo
	$(BIN)/jupyter lab notebooks $(LAB_ROOT)

# Chromium for `make screenshots` (Debian's package is `chromium`); CHROMIUM=/path/to/chrome picks another.
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)

## screenshots: PNGs of reports/index.html and the latest demo month's reports in docs/screenshots/ (headless Chromium)
screenshots: setup
	@test -n "$(CHROMIUM)" || { echo "Chromium not found: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium, then run make screenshots again."; exit 1; }
	@test -f reports/index.html || $(MAKE) report
	$(BIN)/python scripts/screenshots.py --chromium "$(CHROMIUM)" --reports reports --shop demo --out docs/screenshots

## clean-reports: remove generated reports and processed data (raw data is kept)
clean-reports:
	rm -rf reports/*/ reports/index.html data/processed/*/

.PHONY: help setup demo report test test-slow test-spark notebooks lab screenshots clean-reports
