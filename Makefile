# Two entry points for a fresh Debian 12 machine, as root:
#   make e2e   build the lab and run every scenario
#   make test  run the harness's own tests (unit + integration on real btrfs and nspawn)
# Both install what they need first, idempotently (host packages, then the virtualenv).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST_PACKAGES := btrfs-progs systemd-container debootstrap iproute2 nftables tcpdump \
                 dnsmasq-base util-linux python3-venv graphviz
PYTEST_ARGS ?=

.PHONY: setup host-packages e2e test lint clean-labs

setup: host-packages $(VENV)/.installed

# Installs only what is missing, so a second run neither updates nor downloads anything.
host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

e2e: setup
	$(PY) -m pytest scenarios $(PYTEST_ARGS)

test: setup lint
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check harness stages tests scenarios
	$(VENV)/bin/mypy harness

clean-labs: setup
	$(VENV)/bin/harness destroy
