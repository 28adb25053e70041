# scenetext: `make demo` and `make test` on a fresh machine do everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test browser fonts bench check-folder clean

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

test: install browser
	$(BIN)/python -m pytest -q

# Debian's chromium, for the test that opens OUT/report.html in a headless browser. Needs root and
# apt-get; where it cannot be installed this says so and that test skips.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
			|| echo "make browser: chromium could not be installed; the browser test will skip"; \
	else \
		echo "make browser: no chromium, and installing it needs root and apt-get; the browser test will skip"; \
	fi

# Fonts for the synthetic renderer (Debian packages; needs root). Also installs word lists.
fonts:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$$(cat scenetext/resources/fonts-latin-debian.txt) wamerican

bench: install
	$(BIN)/python benchmarks/bench.py --out BENCHMARKS.md
	# fine-tuning on 1,000 crops of a new domain for 30 minutes: held-out and IIIT5K before/after
	$(BIN)/python benchmarks/finetune_demo.py

# Other CPU OCR systems side by side, interleaved on the same photos (not part of `make test`; the
# peers get venvs of their own in .bench-venvs/ from the package registry on first use).
.PHONY: bench-peers
bench-peers: install
	$(BIN)/python benchmarks/peers.py --out BENCHMARKS.md

# images/s over 100 photos: the plain run and --ray with 1 and 2 workers, with per-worker memory (minutes)
.PHONY: bench-ray
bench-ray: install
	$(BIN)/python benchmarks/bench_ray.py --out BENCHMARKS.md

# 500 photos + 5 broken files: full run, a run killed half-way, then resumed, in json and jsonl formats (several minutes each)
check-folder: install
	$(BIN)/python benchmarks/folder_run.py
	$(BIN)/python benchmarks/folder_run.py --format jsonl

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
