# Two commands on a fresh machine: `make run` serves the example site, `make test` runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BIND ?= 127.0.0.1:8080

# The optional compiled build (hive/_compiled.py): a copy of the tree whose hot modules
# mypyc compiles, so that the suite runs against both builds.  Needs a C compiler.
COMPILED := build/compiled
ABSBIN := $(abspath $(BIN))

.PHONY: run chat test tools lint typecheck unit integration compiled bench bench-compiled clean

$(BIN)/hive: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[fast,test]'
	touch $@

run: $(BIN)/hive
	$(BIN)/hive run examples.site:root --bind $(BIND)

# The chat server with its live control panel embedded (examples/chat):
# chat on 127.0.0.1:7000, panel on http://127.0.0.1:8080/ (admin / $$CHAT_PASSWORD).
CHAT_PASSWORD ?= hive
chat: $(BIN)/hive
	CHAT_PASSWORD=$(CHAT_PASSWORD) $(BIN)/python -m examples.chat

test: $(BIN)/hive tools lint typecheck
	HIVE_EXPECT_BUILD=python $(BIN)/pytest
	$(MAKE) compiled
	cd $(COMPILED) && HIVE_EXPECT_BUILD=mypyc PYTHONPATH=$(abspath $(COMPILED)) \
	  $(ABSBIN)/pytest -p no:cacheprovider

compiled: $(BIN)/hive
	rm -rf $(COMPILED)
	mkdir -p $(COMPILED)
	cp -R hive tests examples loadtests ops docs README.md pyproject.toml setup.py $(COMPILED)/
	cd $(COMPILED) && HIVE_COMPILE=1 $(ABSBIN)/python setup.py --quiet build_ext --inplace \
	  > build.log 2>&1 || { tail -40 build.log; exit 1; }

# Debian packages, installed here when we may: load tests drive hive with wrk, the
# tutorial's fortune.rpy runs /usr/games/fortune (fortune-mod), curl drives the proxies,
# the bus's tests run a real Redis (redis-server), and tests/integration/test_nginx.py runs
# hive behind an nginx of its own (own config and ports; the system's nginx service is never
# used), and the live UI tests drive headless Chromium (chromium, chromium-driver).
# Each is command:package.
TOOLS := wrk:wrk /usr/games/fortune:fortune-mod curl:curl redis-server:redis-server \
	/usr/sbin/nginx:nginx chromium:chromium chromedriver:chromium-driver

tools:
	@missing=""; for pair in $(TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "not installed and cannot be installed here:$$missing (apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

lint: $(BIN)/hive
	$(BIN)/ruff check hive tests examples loadtests
	$(BIN)/ruff format --check hive tests examples loadtests

typecheck: $(BIN)/hive
	$(BIN)/mypy

unit: $(BIN)/hive
	$(BIN)/pytest tests/unit

integration: $(BIN)/hive
	$(BIN)/pytest tests/integration

# hive against its peers (issue "Performance"): server CPU per request under wrk, ~13 min
# (--rounds 3: medians of three, three times as long);
# options: make bench BENCH_ARGS="--seconds 5 --only hive,twisted".
bench: $(BIN)/hive tools
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[fast,bench]'
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# The same, hive compiled (make compiled): the figures the README's performance section shows.
bench-compiled: compiled
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[fast,bench]'
	cd $(COMPILED) && $(ABSBIN)/python -m loadtests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
