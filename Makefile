# The two commands: `make run` (the product, embedded defaults) and `make test` (every test).
# Both set up what they need: a virtualenv, pinned dependencies, the browser client build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/realtime
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test test-fast lint typecheck pytest cluster cluster-status client client-test bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

client:
	@if [ -f client/package.json ]; then scripts/build-client.sh; fi

run: $(VENV)/.runtime client
	@mkdir -p var
	@# anvil for the local dev chain (WALLETS_DEV_CHAIN); without it the server still runs.
	@$(MAKE) --no-print-directory contracts/node_modules/.package-lock.json \
		|| echo "warning: could not install anvil (cd contracts && npm ci): no local dev chain"
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py setup_schedule
	$(BIN)/python manage.py demo_user
	@echo "Open http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, WebSocket: ws://$(HOST):$(PORT)/ws/)"
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy realtime_project prices wallets notifications alerts

# anvil (a real JSON-RPC node) and solc for the wallet tests, pinned in contracts/.
contracts/node_modules/.package-lock.json: contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error

# The whole suite in TEST_WORKERS pytest-xdist processes: test modules as units of work,
# tests/deploy/ (the supervised clusters) and tests/browser/ (one Chromium) each on one
# worker (tests/support/xdist_groups.py). TEST_WORKERS=0: one process, as before.
TEST_WORKERS ?= 3

pytest: $(VENV)/.dev client contracts/node_modules/.package-lock.json
	@mkdir -p var
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest \
		-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# The unit layer: no Redis, no server processes, no EVM, no Chromium (the markers; tests
# that use such a fixture are marked by tests/conftest.py). PostgreSQL as in `make test`.
FAST_MARKERS = not redis and not e2e and not browser and not evm

# pytest-xdist: FAST_WORKERS processes (3 was fastest on 2 cores: README) (each its own test database, pytest-django's _gw0,
# _gw1, ...): the unit layer mostly waits on real timers, so workers overlap the waits.
FAST_WORKERS ?= 3

test-fast: $(VENV)/.dev
	@mkdir -p var
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -q -n $(FAST_WORKERS) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

client-test:
	@if [ -f client/package.json ]; then scripts/test-client.sh; fi

test: $(VENV)/.dev
	scripts/services.sh
	scripts/ensure-chromium.sh
	scripts/ensure-haproxy.sh
	$(MAKE) --no-print-directory lint typecheck client-test pytest

# Production mode refuses a missing/weak SECRET_KEY: the local cluster keeps a random one in
# var/secret_key, and speaks plain HTTP on loopback (no TLS proxy in front of it here).
CLUSTER_ENV = REDIS_URL=$(TEST_REDIS_URL) DATABASE_URL=$(TEST_DATABASE_URL) SECRET_KEY="$$(cat var/secret_key)" \
	SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0

var/secret_key:
	@mkdir -p var
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

# The production topology on one machine, supervised (deploy/supervisord.conf) behind HAProxy
# (deploy/haproxy.cfg.template): http://$(HOST):$(PORT)/ in the foreground, Ctrl-C stops it all.
cluster: $(VENV)/.runtime client var/secret_key
	scripts/services.sh
	scripts/ensure-haproxy.sh
	$(CLUSTER_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(CLUSTER_ENV) $(BIN)/python manage.py setup_schedule
	$(CLUSTER_ENV) $(BIN)/python -m realtime_project.cluster run --host $(HOST) --port $(PORT)

cluster-status:
	@$(BIN)/python -m realtime_project.cluster status --host $(HOST) --port $(PORT)

bench: $(VENV)/.dev client
	scripts/services.sh
	cd bench/loadgen && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var staticfiles client/node_modules
