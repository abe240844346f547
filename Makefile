# The two commands a new user needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench fuzz clean postgresql chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,dev,postgres,sql,telemetry]'
	touch $(STAMP)

setup: $(STAMP)

# `parityprobe demo` exits 1 when it finds parity gaps, and the lab plants some: that is the demo working, so
# make succeeds and says why. Any other failure (2 bad input, 3 no verdict, 4 lab trouble) still fails make.
demo: $(STAMP)
	@$(BIN)/parityprobe demo; code=$$?; \
	if [ $$code -eq 1 ]; then \
	  echo "make demo: done — parityprobe demo exits 1 because it found the lab's planted gaps" \
	    "(0: none, 3: only inconclusive); scripts should call parityprobe, not make"; \
	elif [ $$code -ne 0 ]; then exit $$code; fi

test: lint postgresql chromium
	$(BIN)/python -m pytest

# The tests start their own PostgreSQL servers (as the postgres user); the machine's binaries must exist.
# Installed from Debian's packages when missing and we may (root with apt-get); otherwise say what is needed.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else echo "PostgreSQL's server binaries (initdb, postgres) are needed: install PostgreSQL" >&2; exit 1; fi

# The HTML report's browser test loads the page in headless Chromium, and skips without one: so this installs
# Debian's chromium when missing and we may (root with apt-get), and otherwise only says so, never failing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  command -v google-chrome >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	      echo "make chromium: could not install chromium; the HTML report's browser test will be skipped" >&2; \
	  else echo "make chromium: no Chromium (chromium, chromium-browser, google-chrome) on PATH;" \
	    "the HTML report's browser test will be skipped (install Debian's chromium to run it)" >&2; fi

lint: $(STAMP)
	$(BIN)/ruff check src probes tests bench
	$(BIN)/ruff format --check src probes tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_overhead.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/many_scenarios.py
	$(BIN)/python bench/redact.py
	$(BIN)/python bench/yaml_load.py
	$(BIN)/python bench/vault_rotation.py
	$(BIN)/python bench/aws_reads.py
	$(BIN)/python bench/siem_wait.py
	$(BIN)/python bench/store_compare.py
	$(BIN)/python bench/store_write.py
	$(BIN)/python bench/daemon_memory.py
	$(BIN)/python bench/latency_judge.py
	$(BIN)/python bench/trend.py
	$(BIN)/python bench/net_tls.py

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz

clean:
	rm -rf $(VENV) .parityprobe build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
