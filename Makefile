# scenetext: `make demo` and `make test` on a fresh machine do everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test fonts bench check-folder clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned and installed first: pip takes the CPU build from this machine's disk.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	@if $(BIN)/scenetext run --help >/dev/null 2>&1; then \
		$(BIN)/scenetext run examples/ -o out/; \
	else \
		echo "scenetext is installed in $(VENV) ($$($(BIN)/scenetext --version))."; \
		echo "'scenetext run' arrives with the pipeline; try: $(BIN)/scenetext synth words -n 64 -o /tmp/words"; \
	fi

test: install
	$(BIN)/python -m pytest -q

# Fonts for the synthetic renderer (Debian packages; needs root). Also installs word lists.
fonts:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$$(cat scenetext/resources/fonts-latin-debian.txt) wamerican

bench: install
	$(BIN)/python benchmarks/bench.py --out BENCHMARKS.md

# 500 photos + 5 broken files: full run, a run killed half-way, then resumed (several minutes)
check-folder: install
	$(BIN)/python benchmarks/folder_run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
