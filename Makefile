# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project (with pinned torch) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install proto

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semcom demo

test: $(STAMP)
	$(PY) -m pytest -q

proto: $(STAMP)
	$(PY) -m gensemcom.shared.protogen
