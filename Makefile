# Signalements — everything starts here. `make run` and `make test` need only
# Python 3.11+ and make; they create and update .venv themselves.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_VENV := .venv-bench
AUDIT_VENV := .venv-audit
HOST ?= 127.0.0.1
PORT ?= 8000
# make serve listens on every interface, as production servers behind a proxy do.
SERVE_HOST ?= 127.0.0.1
export WEB_CONCURRENCY ?= 2
# Task workers that make serve starts beside the server (0: a process manager runs
# `make worker` instead).
TASK_WORKERS ?= 1

.PHONY: run serve worker cluster cluster-stop test-cluster test test-postgres bench bench-admin bench-scale audit lint format schema clean help

help:
	@echo "make run            set up, migrate, load demo data, serve on http://$(HOST):$(PORT) (SQLite)"
	@echo "make test           run the whole test suite on SQLite"
	@echo "make test-postgres  run the whole test suite on a throwaway PostgreSQL cluster"
	@echo "make serve          production server (granian, DEBUG off) and TASK_WORKERS task workers (1): SERVE_HOST, PORT, DATABASE_URL, WEB_CONCURRENCY"
	@echo "make worker         one background task worker, for a process manager"
	@echo "make cluster        nginx, 3 app servers, 2 task workers, PostgreSQL + a replica, Redis on loopback (scripts/cluster.sh); Ctrl-C stops"
	@echo "make cluster-stop   stop the cluster that make cluster runs"
	@echo "make test-cluster   the scale-out tests: a cluster started for real, nodes killed under load"
	@echo "make bench          project vs the seed's FastAPI design, wrk, PostgreSQL (BENCH_DB=sqlite): bench/results.md"
	@echo "make bench-admin    the admin's pages with 10,000 reports (BENCH_DB=sqlite or PostgreSQL)"
	@echo "make bench-scale    list, detail, stats at 10,000 and 1,000,000 reports, and the import (both databases): bench/results-scale.md"
	@echo "make audit          known vulnerabilities in the pinned requirements (pip-audit; needs PyPI and OSV)"
	@echo "make schema         regenerate the committed OpenAPI schema (schema.yml)"
	@echo "make lint | format  ruff"

# The virtualenv is rebuilt when a requirements file changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

# The seed's FastAPI design (bench/seed) gets a virtualenv of its own, for `make bench`.
$(BENCH_VENV)/bin/.installed: bench/requirements-seed.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-seed.txt
	touch $@

run: venv messages
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py load_demo_data
	@echo
	@echo "Serving http://$(HOST):$(PORT)/ (Ctrl-C stops it):"
	@echo "  API      http://$(HOST):$(PORT)/api/  (docs: /api/docs/, schema: /api/schema/)"
	@echo "  admin    http://$(HOST):$(PORT)/admin/  (admin or agent)"
	@echo "  Open311  http://$(HOST):$(PORT)/open311/v2/discovery.json"
	@echo "A service request with the demo Open311 key:"
	@echo "  curl -s -X POST http://$(HOST):$(PORT)/open311/v2/requests.json -d api_key=demo-open311-key -d service_code=voirie -d lat=48.1147 -d long=-1.6801 -d description=Nid-de-poule"
	@echo "A background task worker (emails, webhooks) runs beside the server; Ctrl-C stops both."
	DEBUG=1 $(BIN)/python manage.py worker --no-startup-delay --verbosity 0 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

serve: venv messages
	$(BIN)/python manage.py check --deploy --fail-level ERROR
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	PATH="$(CURDIR)/$(BIN):$$PATH" HOST=$(SERVE_HOST) PORT=$(PORT) TASK_WORKERS=$(TASK_WORKERS) scripts/serve.sh

# One background task worker in the foreground, for a process manager (systemd,
# supervisor…): run as many as needed, on as many machines; they share the database queue.
# (`make serve` starts TASK_WORKERS of its own: set TASK_WORKERS=0 when these run instead.)
worker: venv messages
	$(BIN)/python manage.py worker --no-startup-delay --no-reload

# Scaled out on one machine (scripts/cluster.sh: CLUSTER_PORT 8080, CLUSTER_APP_SERVERS 3,
# CLUSTER_TASK_WORKERS 2, CLUSTER_DIR…): installs postgresql, redis-server and nginx when
# root. Ctrl-C, or `make cluster-stop` from another terminal, stops everything.
cluster: venv messages
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/cluster.sh up

cluster-stop:
	scripts/cluster.sh down

# The scale-out tests (tests/cluster/): each module's cluster started by scripts/cluster.sh
# on free ports; wrk for the load (bench/ensure-tools.sh installs it when root). -s: each
# test prints its figures (requests, failures, rows, killed parts, req/s).
test-cluster: venv messages
	bench/ensure-tools.sh
	CLUSTER_TESTS=1 $(BIN)/pytest tests/cluster -s

test: venv messages
	$(BIN)/ruff check .
	DEBUG=1 $(BIN)/python manage.py check
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

test-postgres: venv messages
	scripts/with-postgres.sh $(BIN)/pytest

# Knobs: BENCH_DB (postgresql, or sqlite), BENCH_ROWS (10000), BENCH_DURATION (10s),
# BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_WARMUP (2s), BENCH_OUTPUT
# (bench/results.md). See bench/run.py; installs wrk and postgresql when root.
bench: venv messages $(BENCH_VENV)/bin/.installed
	bench/ensure-tools.sh
	if [ "$${BENCH_DB:-postgresql}" = sqlite ]; then $(BIN)/python bench/run.py; \
	else scripts/with-postgres.sh $(BIN)/python bench/run.py; fi

# The admin's pages with 10,000 reports (BENCH_DB=sqlite, or PostgreSQL by default;
# BENCH_ADMIN_ROWS, BENCH_ADMIN_REQUESTS): bench/admin_pages.py.
bench-admin: venv messages
	if [ "$${BENCH_DB:-postgresql}" = sqlite ]; then $(BIN)/python bench/admin_pages.py; \
	else scripts/with-postgres.sh $(BIN)/python bench/admin_pages.py; fi

# The list, detail and stats at 10,000 then 1,000,000 reports, and the bulk import's rate
# and memory, on PostgreSQL and SQLite (BENCH_SCALE_DB=postgresql or sqlite for one;
# BENCH_SCALE_ROWS, BENCH_SCALE_REQUESTS, BENCH_SCALE_BUDGET, BENCH_SCALE_IMPORT_ROWS,
# BENCH_SCALE_CSV_ROWS): bench/scale.py, into bench/results-scale.md and the README.
bench-scale: venv messages
	if [ "$${BENCH_SCALE_DB:-both}" = sqlite ]; then $(BIN)/python bench/scale.py; \
	else scripts/with-postgres.sh $(BIN)/python bench/scale.py; fi

# Known vulnerabilities in the pinned requirements (and what they pull in), from the Python
# Packaging Advisory Database and OSV: for operators, before and after an upgrade. It needs
# to reach pypi.org and osv.dev, which CI machines cannot: CI does not run it.
$(AUDIT_VENV)/bin/.installed: requirements-audit.txt
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AUDIT_VENV)/bin/python -m pip install --quiet -r requirements-audit.txt
	touch $@

audit: $(AUDIT_VENV)/bin/.installed
	$(AUDIT_VENV)/bin/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: venv
	DEBUG=1 $(BIN)/python manage.py spectacular --lang en --validate --fail-on-warn --file schema.yml

# The French catalogue (signalements/locale), compiled into the .mo that Django reads (not
# committed). compilemessages walks the tree for locale directories: not the virtualenvs'.
.PHONY: messages messages-update
messages: venv
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore='.*' --ignore=bench --ignore=media --ignore=staticfiles -v 0

# The catalogue again from the code (new messages come untranslated: tests/test_translations.py
# names them until they are translated in signalements/locale/fr/LC_MESSAGES/django.po).
messages-update: venv
	DEBUG=1 $(BIN)/python manage.py makemessages -l fr --no-location --no-obsolete

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(AUDIT_VENV) staticfiles .pytest_cache
