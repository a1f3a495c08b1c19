# Loc2 for QGIS — developer commands. `make help` lists them.
PY := .venv/bin/python
export QT_QPA_PLATFORM ?= offscreen
DEMO_OUT ?= demo_out

.PHONY: help setup test lint format demo bench package clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-9s %s\n", $$1, $$2}'

setup:  ## Install Debian packages, the .venv and pip packages (idempotent)
	@bash scripts/setup_env.sh

lint: setup  ## ruff (lint + format check), Bandit and detect-secrets (the QGIS plugin repository's scanners)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/bandit -q -c pyproject.toml -r __init__.py loc2_plugin.py core ui
	git ls-files -z | xargs -0 .venv/bin/detect-secrets-hook

format: setup  ## Apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

test: setup lint  ## The whole test suite (after lint), under a virtual X display
	xvfb-run -a $(PY) -m pytest

demo: setup  ## The main job: localize a generated synthetic city with the demo model
	$(PY) -m loc2.core.cli demo --out $(DEMO_OUT)

bench: setup  ## Benchmarks (figures printed; see README)
	$(PY) benchmarks/solver.py
	$(PY) benchmarks/search_memory.py
	$(PY) benchmarks/ortho_fetch.py

package:  ## Zip the plugin for the QGIS plugin repository (no weights over the limit, no caches)
	$(PY) scripts/package_plugin.py

clean:  ## Remove caches and outputs (keeps .venv)
	rm -rf .pytest_cache .ruff_cache $(DEMO_OUT) tests/artifacts
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
