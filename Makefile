# Two commands for a fresh machine with only python3: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip is asked for the CPU torch wheel that lies on disk; see requirements.txt
PIP := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: run test lint bench clean screenshot

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python main.py $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/engine_overhead.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/ui_latency.py

screenshot: $(VENV)/.installed
	QT_QPA_PLATFORM=offscreen $(BIN)/python main.py --screenshot assets/screenshot.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
