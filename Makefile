# The two commands of the README, and the steps they share.
VENV ?= .venv
PY := $(VENV)/bin/python
# The lab writes its generated PostgreSQL password here; the suite reads it.
export NAUTILUS_POSTGRES_PASSWORD_FILE ?= $(CURDIR)/lab/.state/postgres-password

.PHONY: setup daily test report lab-up lab-down test-tools

# The suite alone, for checking a deployment; the lab and the suite's own tests add their extras.
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-%: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[$*]'
	touch $@

# The main job: the lab up, then the daily tier against it; the report path is printed at the end.
daily: $(VENV)/.installed-lab
	$(PY) -m lab up
	$(PY) -m pytest -m daily --inventory=lab/inventory.yaml

# The suite's own tests: unit tests, then the lab tests (which bring the lab up and down).
test: $(VENV)/.installed-lab $(VENV)/.installed-test test-tools
	$(PY) -m pytest tests --durations=25

# The report tests open the HTML and Allure reports in Debian's Chromium; the alert rules' tests run promtool,
# taken out of Debian's prometheus package into the venv: installing the package would start a Prometheus on
# port 9090, where the lab's own must listen.
test-tools: $(VENV)/.installed
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	@command -v promtool >/dev/null || test -x $(VENV)/bin/promtool || \
		(tmp=$$(mktemp -d) && cd $$tmp && (apt-get download prometheus || (apt-get update -q && apt-get download prometheus)) >/dev/null && dpkg-deb -x prometheus_*.deb x \
		 && install -m 755 x/usr/bin/promtool $(CURDIR)/$(VENV)/bin/promtool; rc=$$?; rm -rf $$tmp; exit $$rc)

# The Allure 3 report of a tier's newest run (installs the pinned Allure with npm on first use): make report TIER=weekly
report: setup
	$(PY) -m reports.allure_report --tier $(or $(TIER),daily)

lab-up: $(VENV)/.installed-lab
	$(PY) -m lab up

lab-down: $(VENV)/.installed-lab
	$(PY) -m lab down
