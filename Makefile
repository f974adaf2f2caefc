# segsync — the commands humans and CI use. Each target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the package alone (what `make demo` needs) and the package with its test extras
# (everything else). scripts/setup-venv.sh installs with uv, or pip (SEGSYNC_INSTALLER=pip).
DEMO_STAMP := $(VENV)/.segsync-demo
STAMP := $(VENV)/.segsync-installed
export PYTHON

.PHONY: test check demo bench soak fuzz lint fmt typecheck install clean browser java screenshots

$(DEMO_STAMP): pyproject.toml scripts/setup-venv.sh
	@scripts/setup-venv.sh $(VENV) demo
	@touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	@scripts/setup-venv.sh $(VENV) test
	@touch $(STAMP)

install: $(STAMP)

CHROMIUM := /usr/bin/chromium

## make browser: Debian's chromium for the browser tests (installed with apt-get when root).
## Never Playwright's own browser download (it fails on a closed network).
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	else \
		echo "note: $(CHROMIUM) is missing and we are not root; the browser tests will skip"; \
		echo "      (or fail under SEGSYNC_TEST_REQUIRE_ALL=1): sudo apt-get install chromium"; \
	fi

## make java: Debian's Java 17 for the Spark tests (PySpark runs Spark in a JVM; installed with
## apt-get when root, like the browser above). PySpark itself comes with the test extra.
java:
	@if command -v java >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's Java 17 for the Spark tests"; \
		apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless; \
	else \
		echo "note: java is missing and we are not root; the Spark tests will skip"; \
		echo "      (or fail under SEGSYNC_TEST_REQUIRE_ALL=1): sudo apt-get install openjdk-17-jre-headless"; \
	fi

## make test: lint, format check, strict type check, then every test on two workers
test: $(STAMP) browser java
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy --strict src
	$(BIN)/pytest -q -n 2

## make check: the inner loop — lint, format check, strict type check, then the fast tier (no
## slow, postgres or browser test; fewer property examples) on two workers. See docs/testing.md.
check: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy --strict src
	$(BIN)/pytest -q --fast -n 2

## make screenshots: run the browser tests and copy the main screenshots into docs/screenshots
screenshots: $(STAMP) browser
	$(BIN)/python scripts/screenshots.py

## make demo: the whole job on embedded defaults (installs the package alone, not the test extras)
demo: $(DEMO_STAMP)
	$(BIN)/segsync demo

## make bench: every benchmark; each prints its figures
bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## make soak: the chaos soak (scripts/soak.py; docs/exports.md, "Chaos soak"): runs killed at random
## under simulator faults, then Autopilot's state checked; at most 30 minutes, prints its figures.
## Options through SOAK_ARGS, e.g. make soak SOAK_ARGS="--kills 60 --seed 3".
soak: $(STAMP)
	$(BIN)/python scripts/soak.py $(SOAK_ARGS)

## make fuzz: the fuzz suite at full size (scripts/fuzz.py; docs/security.md, "Fuzzing"):
## generated segment definitions, files, data matchings and API calls as every role; prints
## tries, clean errors, 5xx, tracebacks, state changes and canary hits. Bounded (~10 min).
## A short version runs in make test. Options through FUZZ_ARGS, e.g. FUZZ_ARGS="--examples 50".
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz.py $(FUZZ_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
