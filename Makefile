# Two commands do all the set-up on a fresh machine: `make demo` and `make test` (both install first when needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Machines without an NVIDIA GPU get the CPU build of torch (no multi-GB CUDA download). Override to choose another.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)
PYTEST_ARGS ?=
# Tests marked slow (a few minutes in all) are skipped locally and run in CI, where the whole suite fits its budget.
PYTEST_MARK ?= $(if $(CI),,not slow)

.PHONY: install demo test test-all lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --retries 0 "torch==$(TORCH_VERSION)" \
		$(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install -q -e ".[dev]"
	touch $@

demo: install
	$(PY) -m recipes.demo

test: install
	$(PY) -m pytest $(if $(PYTEST_MARK),-m "$(PYTEST_MARK)") $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: install
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
