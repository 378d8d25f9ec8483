# Two commands: `make book` and `make test`. Both create the virtual environment when missing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nine-installed
SMOKE := _build/smoke
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: book test unit notebooks book-check figures results clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: unit notebooks book book-check

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -n 2

# Notebook tests: every notebook with the smoke profile, executed and checked by nbval.
notebooks: $(STAMP)
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	for nb in $(NOTEBOOKS); do \
		$(BIN)/papermill --prepare-only -p profile smoke $$nb $(SMOKE)/$$(basename $$nb) || exit 1; \
	done
	cd $(SMOKE) && NINE_RUNS_DIR=$(CURDIR)/$(SMOKE)/runs ../../$(BIN)/python -m pytest --nbval-lax -n 2 --dist loadscope -p no:cacheprovider .

book-check: $(STAMP)
	$(BIN)/python -m pytest tests/book

# The committed cpu-profile runs in results/ and the citable figures in book/figures/.
figures: $(STAMP)
	$(BIN)/papermill notebooks/02_gaussian_matching.ipynb $(SMOKE)/figures-02.ipynb -p export_figures True

clean:
	rm -rf _build
