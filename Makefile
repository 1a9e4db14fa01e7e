# Everyday commands; the scripts in scripts/ do the work and can be run directly.
# Every target that needs Python runs scripts/bootstrap first (quiet when nothing
# is missing), which sets up .venv/; `make deb` with the packaging toolchain
# (scripts/bootstrap --package), `make test` with everything the tests need.

VENV   := .venv
PYTHON := $(VENV)/bin/python
# the paths scripts/lint checks
LINT_PATHS := wlmd tests examples bench

.PHONY: help bootstrap run test lint format sample-db check-sample-db bench deb clean distclean

help:
	@echo "make run              wlmd on examples/wlistdb, port 11112, called AE title WLMD"
	@echo "make test             make lint's checks + the whole pytest suite (scripts/test)"
	@echo "make lint             ruff check, ruff format --check, mypy wlmd (scripts/lint)"
	@echo "make format           ruff format + ruff check --fix"
	@echo "make sample-db        regenerate examples/wlistdb"
	@echo "make check-sample-db  check examples/wlistdb against its generator"
	@echo "make bench            benchmarks (bench/run.py)"
	@echo "make deb              Debian package"
	@echo "make clean            caches and build output (distclean: also .venv)"

bootstrap:
	scripts/bootstrap

run:
	scripts/run-sample

test:
	scripts/test

lint:
	scripts/lint

format: bootstrap
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

sample-db: bootstrap
	$(PYTHON) examples/make_sample_db.py

check-sample-db: bootstrap
	$(PYTHON) examples/make_sample_db.py --check

# Placeholder until bench/ exists.
bench: bootstrap
	@test -f bench/run.py || { echo "make bench: bench/run.py does not exist yet" >&2; exit 1; }
	$(PYTHON) bench/run.py

# wlmd_<version>_all.deb in build/deb/, built from a temporary copy of the tree
# (packaging/build-deb; see packaging/README.md). DEB_OUT=dir puts it elsewhere.
DEB_OUT := build/deb
deb:
	scripts/bootstrap --package
	packaging/build-deb $(DEB_OUT)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/out
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
