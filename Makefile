# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test lint format install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime

## Embedded default: SQLite and a filesystem broker under var/, web + worker + beat in one command.
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	@echo "Vigil is starting at http://127.0.0.1:$(PORT)/ (admin at /admin/). Ctrl-C stops all."
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/celery -A crm worker --beat --loglevel=INFO --concurrency=2 \
	    --without-gossip --without-mingle --without-heartbeat \
	    --schedule=var/celerybeat-schedule & \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) & \
	wait

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Lint, then the whole suite against PostgreSQL and Redis on localhost (see crm/settings_test.py),
## then the hand-written SQL of the set-based jobs once more on SQLite (the embedded default).
test: lint
	$(BIN)/pytest
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite.sqlite3 $(BIN)/pytest -q -p no:cacheprovider \
	    tests/finance tests/notifications/test_daily_notifications.py \
	    tests/notifications/test_expired_jobs_alert.py tests/notifications/test_blocking_gate.py

## Benchmarks on PostgreSQL (prints figures; see README).
bench: $(VENV)/.dev
	$(BIN)/python -m bench.notifications
	$(BIN)/python -m bench.penalties

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
