# bestex — two commands on a fresh machine with python3: `make demo` and `make test`.
# Each bootstraps what it needs: uv (from pip when missing), Python 3.12 (.python-version) and
# the locked dependencies (`uv sync --frozen`).
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV_PY := .venv/bin/python
export BESTEX_HOME ?= $(CURDIR)/.bestex
export MLFLOW_UV_AUTO_DETECT ?= false
PYTEST_WORKERS ?= 2

.PHONY: help bootstrap demo test ui bench journey lint clean services

help:
	@echo "make demo   - materialize the whole asset graph (synthetic default + real data if present)"
	@echo "make test   - run the test suite"
	@echo "make ui     - Dagster UI on 127.0.0.1:3000, MLflow UI on 127.0.0.1:5000 and the paper-trading"
	@echo "              dashboard on 127.0.0.1:8050 (PAPER_JOURNAL=path, default the newest"
	@echo "              BESTEX_HOME/paper/*.db); Ctrl-C stops all three"
	@echo "make bench  - run the benchmarks of BENCHMARKS.md"
	@echo "make journey - time the demo from nothing, then the registry drill (fresh temp home)"
	@echo "make services - PostgreSQL on 127.0.0.1 under BESTEX_HOME/services (installs Debian's"
	@echo "              postgresql when missing); \`bestex services down\` stops it"

bootstrap: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user uv \
		|| $(PYTHON) -m pip install --quiet --break-system-packages uv
	$(UV) sync --frozen --compile-bytecode  # .pyc at install: imports (and a model load) do not recompile
	@touch $@

services: bootstrap
	@sh scripts/ensure_postgres.sh  # Debian's postgresql when initdb is missing (instant when present)
	$(VENV_PY) -m bestex.cli services up

demo: bootstrap
	$(VENV_PY) -m bestex.cli demo

test: bootstrap
	@sh scripts/ensure_chromium.sh  # Debian's chromium for the dashboard's browser test (instant when present)
	@rc=0; $(VENV_PY) -m pytest -n $(PYTEST_WORKERS) -q || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing, a suite must run"; exit 1; fi; \
	exit $$rc

ui: bootstrap
	@mkdir -p $(BESTEX_HOME)/dagster
	DAGSTER_HOME=$(BESTEX_HOME)/dagster $(VENV_PY) -m bestex.cli ui $(if $(PAPER_JOURNAL),--journal "$(PAPER_JOURNAL)")

bench: bootstrap
	$(UV) sync --frozen --compile-bytecode --group bench  # hftbacktest: the peer of the simulator benchmark
	@rm -f .venv/.synced
	$(VENV_PY) benchmarks/bench_ingest.py
	$(VENV_PY) benchmarks/bench_daily.py
	$(VENV_PY) benchmarks/bench_synth.py
	$(VENV_PY) benchmarks/bench_simulator.py
	$(VENV_PY) benchmarks/bench_tuning.py
	$(VENV_PY) benchmarks/bench_serving.py  # champion of BESTEX_HOME, else a tiny model
	$(VENV_PY) benchmarks/bench_journey.py
	$(VENV_PY) benchmarks/bench_regimes.py
	$(VENV_PY) benchmarks/bench_news.py
	@if [ -d "$(BESTEX_HOME)/lake/training_set" ]; then \
	  $(VENV_PY) benchmarks/bench_lobo.py --home "$(BESTEX_HOME)" && \
	  $(VENV_PY) benchmarks/bench_policy.py --home "$(BESTEX_HOME)" && \
	  $(VENV_PY) benchmarks/bench_policy_adaptive.py --home "$(BESTEX_HOME)" && \
	  $(VENV_PY) benchmarks/bench_paper.py --home "$(BESTEX_HOME)" --rate 100 --speed 5 --burst 200 --horizon-min 10 --drain-s 400 && \
	  $(VENV_PY) benchmarks/bench_drift_break.py --home "$(BESTEX_HOME)" && \
	  $(VENV_PY) benchmarks/bench_ensemble.py --home "$(BESTEX_HOME)"; \
	else echo "bench_lobo, bench_policy, bench_policy_adaptive, bench_paper, bench_drift_break, bench_ensemble: skipped, they need a demo home (run make demo)"; fi

journey: bootstrap
	$(VENV_PY) benchmarks/bench_journey.py

lint: bootstrap
	$(VENV_PY) -m ruff check .

clean:
	rm -rf .venv .bestex
