# Baton: `make run` starts the local stack, `make test` runs the whole suite.
# Both do all set-up on a fresh Debian machine: Debian packages, the virtualenv, npm packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# prometheus brings promtool, which tests the alert rules (deploy/prometheus/).
APT_PACKAGES := redis-server chromium espeak-ng sox docker-compose prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint typecheck bench system-deps web-build web-typecheck clean

run: system-deps $(VENV)/.installed web-build
	$(PY) -m deploy.local

# The suite in two runs. Tests that wait on live audio against the clock (marked `realtime` or
# `browser`) run one at a time: on 2 cores two of them side by side starve the devserver's media
# relay (ICE consent lapses, an agent's track is never published). The rest runs in
# TEST_PROCESSES processes, a file each. Exit code 5 is "nothing selected" (PYTEST_ARGS
# naming files of one kind only).
TEST_PROCESSES ?= 2
LIVE_AUDIO := realtime or browser

test: system-deps $(VENV)/.installed web-build web-typecheck
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not ($(LIVE_AUDIO))" $(PYTEST_ARGS) \
	  || [ $$? -eq 5 ]
	$(PY) -m pytest -m "$(LIVE_AUDIO)" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

bench: system-deps $(VENV)/.installed
	$(PY) -m bench.history

# Installs only what is missing, so a prepared machine pays nothing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

web-build:
	@if [ -f web/package.json ]; then $(MAKE) --no-print-directory web/dist/.built; fi

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/.built: web/node_modules/.installed $(shell find web/src -type f 2>/dev/null) web/package.json web/build.mjs
	cd web && npm run build
	touch $@

web-typecheck: web/node_modules/.installed
	cd web && npm run --silent typecheck

clean:
	rm -rf $(VENV) web/node_modules web/dist .pytest_cache .mypy_cache
