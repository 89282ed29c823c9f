# The README's commands. Each target builds its own virtualenv in .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs docs-build docs-pages bench mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Revoke the bundled sample against the embedded sandbox. Exit status 1 is expected:
# the sample holds rows that cannot be revoked, to show every outcome. It also writes the
# run's HTML report.
demo: $(STAMP)
	$(BIN)/batch-revoke run samples/badges.csv --sandbox --report output/badges-report.html; \
	status=$$?; \
	if [ $$status -le 1 ]; then \
		echo "demo finished (exit status $$status); the report: output/badges-report.html"; \
	else exit $$status; fi

test: $(STAMP) lint docs-build
	$(BIN)/pytest -n 4

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The documentation site (docs/, mkdocs.yml): served locally, rebuilt as pages change.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The strict build fails on a broken link, a missing anchor or a page left out of the nav.
docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The reference pages (docs/reference/) and the README's table of statuses, from the code.
docs-pages: $(STAMP)
	$(BIN)/python docs/generate.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The mutation pass: mutmut's mutants of the core modules (the score per module and its
# survivors: bench/mutation_scores.py), then the hand-made ones only end-to-end tests or a
# signal can catch. Takes an hour or more on two cores.
mutants: $(STAMP)
	$(BIN)/mutmut run
	$(BIN)/python bench/mutation_scores.py --survivors
	$(BIN)/python bench/mutants.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
