# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test services lint format install bench bench-10m screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime

## Embedded default: SQLite and a filesystem broker under var/ (or $VIGIL_VAR_DIR); web, worker
## and beat under bin/supervise.py (see Procfile): Ctrl-C, TERM, a closed terminal or a lost
## output (`make run | tee log`) stops all three.
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	@echo "Vigil is starting at http://127.0.0.1:$(PORT)/ (admin at /admin/). Ctrl-C stops all."
	@PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) PYTHONUNBUFFERED=1 exec $(BIN)/python \
	    bin/supervise.py Procfile

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## What the suite needs outside Python (Chromium, Dovecot, PostgreSQL and Redis running): installed
## and started when missing, nothing done when all is there.
services:
	@bin/test-services

## Lint, then the whole suite against PostgreSQL and Redis on localhost (see crm/settings_test.py),
## then the set-based jobs, the job lock and slots, and the gate once more on SQLite (the
## embedded default).
test: services lint
	$(BIN)/pytest
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite.sqlite3 $(BIN)/pytest -q -p no:cacheprovider \
	    tests/finance tests/notifications/test_daily_notifications.py \
	    tests/notifications/test_daily_changes.py \
	    tests/notifications/test_expired_jobs_alert.py tests/notifications/test_blocking_gate.py \
	    tests/notifications/test_user_blocking.py tests/notifications/test_dashboard_order.py \
	    tests/notifications/test_dashboard.py tests/notifications/test_stage_quick_action.py \
	    tests/notifications/test_jinja2_forms.py tests/notifications/test_full_lists.py \
	    tests/crm/test_time_zone_and_dates.py tests/crm/test_contact_team.py \
	    tests/crm/test_lead_team.py tests/crm/test_matching.py tests/crm/test_owner_rollups.py \
	    tests/crm/test_owned_teams.py \
	    tests/crm/test_form_renderer.py tests/crm/test_search_paging.py \
	    tests/crm/test_working_time.py tests/crm/test_absences.py tests/crm/test_calendar_feed.py \
	    tests/crm/test_list_rows.py tests/notifications/test_working_time_deadlines.py \
	    tests/notifications/test_escalation.py tests/notifications/test_alerts_in_working_time.py \
	    tests/notifications/test_morning_digest.py \
	    tests/crm/test_job_lock.py tests/crm/test_job_slots.py tests/crm/test_dst_slots.py \
	    tests/parc tests/mailsync tests/nurture tests/monitoring

## Benchmarks on PostgreSQL (prints figures; see README).
# The pages' figures next to those of c23ca5f, the code before #21's work (d069525: before the
# dashboard's first speed work, #12).
DASHBOARD_BEFORE ?= c23ca5f
bench: $(VENV)/.dev
	$(BIN)/python -m bench.notifications --before $(DASHBOARD_BEFORE)
	$(BIN)/python -m bench.penalties
	$(BIN)/python -m bench.parc
	$(BIN)/python -m bench.suppression
	$(BIN)/python -m bench.nurture
	$(BIN)/python -m bench.mailsync
	$(BIN)/python -m bench.email_list
	$(BIN)/python -m bench.crm_pages --rows 1000000
	$(BIN)/python -m bench.calendar_feed
	$(BIN)/python -m bench.deadlines

## The two set-based jobs at ten million rows, to set beside their 1,000,000 figures (#21 §4:
## within 1.1x of the hand-written SQL, at most 11x the 1M time). Takes hours; databases of
## their own.
bench-10m: $(VENV)/.dev
	$(BIN)/python -m bench.penalties --invoices 10000000 --database vigil_bench_penalties_10m
	$(BIN)/python -m bench.notifications --rows 10000000 --jobs-only \
	    --database vigil_bench_notifications_10m

## PNG screenshots into var/screenshots/: the dashboard for a rep and a manager at 1366 and 800 px,
## Admin → Periodic tasks at 1366 px; demo data in a throwaway SQLite database.
screenshots: $(VENV)/.dev
	$(BIN)/python bin/screenshots var/screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
