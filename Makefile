# The two commands: `make book` (execute every chapter, build the HTML book into _build/html)
# and `make test` (unit tests, nbval over book/ under this CPU's kernels and again under torch's generic
# kernels with models trained afresh, lint, types, a warnings-as-errors book build).  A chapter that raises
# fails `make book`, naming the notebook.
# Both create .venv with python3 -m venv on first use; later runs reuse it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Torch is installed only if the environment lacks it (Colab and most readers already have one); without
# nvidia-smi a one-line hint points to the CPU-only build (README, "Set-up on a CPU-only machine").
TORCH_SPEC ?= torch torchvision

.PHONY: book test setup unit nbval nbval-default lint typecheck book-check check-html bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@$(BIN)/python -c "import torch, torchvision" 2>/dev/null || { \
	  command -v nvidia-smi >/dev/null 2>&1 || echo "No GPU found (no nvidia-smi): installing torch as '$(TORCH_SPEC)'; for the much smaller CPU-only build set TORCH_SPEC (README, 'Set-up on a CPU-only machine')."; \
	  $(BIN)/python -m pip install $(TORCH_SPEC); }
	$(BIN)/python -m pip install -e '.[book,test]'
	touch $(STAMP)

setup: $(STAMP)

book: setup
	$(BIN)/jupyter-book build . --all

test: setup lint typecheck unit nbval nbval-default book-check check-html

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests --ignore=tests/html

nbval: setup
	$(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-current-env book/

# The same under another CPU kernel family (torch's generic kernels), with every model trained afresh in an
# empty cache: checked outputs must not depend on the processor's vector unit or on cached models.
nbval-default: setup
	cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	ATEN_CPU_CAPABILITY=default GIF_LITE_CACHE="$$cache" \
	  $(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-current-env book/

# The chapters were just executed by nbval and are committed with their outputs: build them as they are.
book-check: setup
	mkdir -p _build
	sed 's/^\(  *execute_notebooks:\).*/\1 "off"/' _config.yml > _build/_config_check.yml
	$(BIN)/jupyter-book build . --all -W --keep-going --config _build/_config_check.yml

# The built book in headless Chromium (skipped, with the reason, where Chromium is missing).
check-html: setup
	$(BIN)/pytest -p no:cacheprovider tests/html

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .mypy_cache
