# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
# Two processes: the suite uses one torch thread per process (see tests/conftest.py).
PYTEST_ARGS ?= -n 2

.PHONY: run test test-suite lint format migrations-check chromium venv clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision first, exactly pinned, so pip never picks another build.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: venv
	scripts/run.sh

test: venv chromium lint migrations-check test-suite

test-suite: venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: venv
	mkdir -p var
	$(PY) manage.py makemigrations --check --dry-run

chromium:
	@scripts/install-chromium.sh

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache .ruff_cache
