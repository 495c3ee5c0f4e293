# pdfgen-pipeline — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared

.PHONY: demo dev test lint bench lock system-deps venv clean

system-deps:
	bash scripts/install-system-deps.sh $(SYSTEM_DEPS_FLAGS)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: system-deps venv
	$(PY) -m pdfgen_pipeline.demo

dev: system-deps venv
	mkdir -p var/dagster_home && cp deploy/dagster-local.yaml var/dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/var/dagster_home $(VENV)/bin/dagster dev -m pdfgen_pipeline.definitions -h 127.0.0.1 -p 3000

test: SYSTEM_DEPS_FLAGS = --with-test
test: system-deps venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

# Re-resolve the dependencies from pyproject.toml's ranges and pin the result in constraints.txt.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q -e '.[test]'
	{ head -n 2 constraints.txt; .lock-venv/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .lock-venv

# Issue-4 figures: C2.2 against the reference baseline, synthetic scaling, no-op re-run, sensor tick,
# backfill throughput (each prints medians and ratios measured in the same run; ~25 min on 2 cores).
bench: system-deps venv
	$(PY) bench/render_c22.py --shared $(SHARED)
	$(PY) bench/scaling.py
	$(PY) bench/noop_rematerialize.py
	$(PY) bench/sensor_cost.py
	$(PY) bench/backfill_throughput.py
	$(PY) bench/capacity.py

clean:
	rm -rf var .pytest_cache
