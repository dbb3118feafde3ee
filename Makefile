# grace-book: two entry points.
#   make run    set up .venv and run the main job on the embedded miniature world
#   make test   set up .venv and run the default test suite
# GPU users: make run TORCH_SPEC="torch"   (any pip spec; the default pins the CPU wheel)
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= dev,book
PROFILE    ?= quick
OUT        ?= artifacts/$(PROFILE)

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: run test venv lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

run: venv
	$(BIN)/grace demo --out $(OUT)/demo

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check grace tests benchmarks

clean:
	rm -rf artifacts _build book/_executed
