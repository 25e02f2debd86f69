# ita-vc developer entry points. Each target creates .venv itself on a fresh machine
# (only Python 3.11, git, make and the package registries are needed).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1

WHEEL_VENV := .venv-wheel

.PHONY: install demo test quick lint typecheck pytest bench fuzz clean journey-wheel pg-start pg-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e . --group dev
	touch $(STAMP)

install: $(STAMP)

## The main job: the example pipeline end to end on the embedded defaults.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## Lint, type-check and the whole test suite (with a line-coverage summary of ita_vc).
test: lint typecheck pytest

## The inner loop: ruff and every test not marked `slow` (pytest -m "not slow").
quick: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov=ita_vc --cov-report=term:skip-covered

## The researcher's journey (tests/journey) against a wheel of this repository installed in a
## fresh venv: nothing of the repository on the path, only the installed package.
journey-wheel: $(STAMP)
	rm -rf build dist $(WHEEL_VENV)
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q --upgrade "pip>=25.1"
	$(WHEEL_VENV)/bin/python -m pip install -q dist/ita_vc-*.whl
	ITA_VC_JOURNEY_BIN=$(CURDIR)/$(WHEEL_VENV)/bin $(BIN)/python -m pytest -q -p no:cacheprovider tests/journey

## Long fuzzing of the hand-edited YAML parsers (CI runs a few derandomized examples);
## ITA_VC_FUZZ_EXAMPLES=N for more, ITA_VC_FUZZ_SEED=S for random examples from a seed.
fuzz: $(STAMP)
	ITA_VC_FUZZ_EXAMPLES=$${ITA_VC_FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q \
		-p no:cacheprovider tests/hostile/test_fuzz.py

## A PostgreSQL server for the jobs tests (Debian's postgresql package; 127.0.0.1:54329,
## login ita_vc / PGPASSWORD=ita_vc; data in $${ITA_VC_PG_DIR:-/tmp/ita-vc-pg}). The tests start
## it themselves when it is installed; CI installs the package and runs this first.
pg-start:
	scripts/postgres.sh start

pg-stop:
	scripts/postgres.sh stop

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e . --group bench
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(WHEEL_VENV) build dist .pytest_cache .mypy_cache .ruff_cache *.egg-info \
		.coverage .coverage.* htmlcov
