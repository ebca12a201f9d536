# The two commands of the README, and the steps they share.
VENV ?= .venv
PY := $(VENV)/bin/python
# The lab writes its generated PostgreSQL password here; the suite reads it.
export NAUTILUS_POSTGRES_PASSWORD_FILE ?= $(CURDIR)/lab/.state/postgres-password

.PHONY: setup daily test report lab-up lab-down test-tools lock coverage

# The suite alone, for checking a deployment; the lab and the suite's own tests add their extras.
# Each installs its hash-pinned lock (requirements/*.lock, made by `make lock` below), so every machine gets
# the versions CI tested; a changed lock redoes its stamp. The checkout itself is not installed (pyproject has
# packages = [] and pytest.ini puts the checkout on the path), and pip stays the one the venv came with:
# nothing unpinned is fetched.
setup: $(VENV)/.installed

$(VENV)/.installed: requirements/suite.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements/suite.lock
	touch $@

$(VENV)/.installed-%: requirements/%.lock $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements/$*.lock
	touch $@

# The main job: the lab up, then the daily tier against it; the report path is printed at the end.
daily: $(VENV)/.installed-lab
	$(PY) -m lab up
	$(PY) -m pytest -m daily --inventory=lab/inventory.yaml

# The suite's own tests: unit tests (on two workers: they share nothing), then the lab tests, one at a time on the
# one lab (which they bring up and down).
test: $(VENV)/.installed-lab $(VENV)/.installed-test test-tools
	$(PY) -m pytest tests/unit -n 2 -q
	$(PY) -m pytest tests/lab --durations=25

# After the lab tests: what they recorded seeing each check do, merged into docs/lab-proofs.json, and
# docs/coverage.md written from it (a unit test fails until both agree with the map and the checks).
coverage: $(VENV)/.installed
	$(PY) -m checks.coverage --proofs reports/out/lab-proofs.json

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

# Regenerates the locks from pyproject.toml's ranges and extras after a change there, with uv in a venv of its
# own (build/ is not committed). One lock serves every Python from 3.11 on and every platform: a dependency
# that only some need carries its marker (async-timeout for Debian 12's Python 3.11.2, what redis asks below
# 3.11.3), and each pin lists the hash of every file PyPI has of it. Every pin already in a lock is kept while
# its range allows it, and the lab and test locks are held to the suite lock's versions. `make lock UPGRADE=1`
# moves each package to the newest release its range allows; `make lock CONSTRAINTS=tested.txt` pins to
# another venv's `pip freeze --exclude-editable`.
LOCK_VENV ?= build/lock-venv
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile -q --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) $(foreach c,$(CONSTRAINTS),-c $(c))
lock:
	test -x $(LOCK_VENV)/bin/uv || \
		(python3 -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.9)
	@mkdir -p requirements
	$(UV_COMPILE) -o requirements/suite.lock pyproject.toml
	$(UV_COMPILE) --extra lab -c requirements/suite.lock -o requirements/lab.lock pyproject.toml
	$(UV_COMPILE) --extra test -c requirements/suite.lock -o requirements/test.lock pyproject.toml
