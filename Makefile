# `make demo` and `make test` set everything up on a machine with only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE := fixtures/sample/hello-1.0.0-linux-amd64.aci

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# setuptools warns, in ten lines, that the checkout's convert/ folder is imported before
	@# the installed package: for an editable install run from the checkout that is the point
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo-out && mkdir demo-out
	$(BIN)/acioci inspect $(SAMPLE) --store fixtures/sample/store
	$(BIN)/acioci convert $(SAMPLE) oci:demo-out/hello:1.0.0 --store fixtures/sample/store
	@echo "--- demo-out/hello:"
	@find demo-out/hello -type f | sort

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/aci_to_oci.py

clean:
	rm -rf $(VENV) demo-out bench/work .pytest_cache
