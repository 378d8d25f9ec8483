# Two commands: `make book` and `make test`. Both create the virtual environment when missing.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.nine-installed
SMOKE := _build/smoke
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: book test unit notebooks reproduce book-check other-cpu clean-tree results bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

# The book shows committed runs only (NINE_NO_TRAINING: a run missing from results/ is an error, not
# hours of training). The pages are executed first, one per core, into the cache the build reads
# (nine/book/execute.py). The download button serves _sources/: the executed notebooks replace the stripped ones.
book: $(STAMP)
	OMP_NUM_THREADS=1 NINE_NO_TRAINING=1 $(BIN)/python -m nine.book.execute
	NINE_NO_TRAINING=1 $(BIN)/jupyter-book build . --all -W -n --keep-going
	$(BIN)/python -m nine downloads
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Each stage in turn, stopping at the first that fails; the time of each is printed at the end.
TEST_STAGES := unit notebooks reproduce book book-check other-cpu clean-tree
test: $(STAMP)
	@start=$$(date +%s); times=""; \
	for stage in $(TEST_STAGES); do \
		began=$$(date +%s); \
		$(MAKE) --no-print-directory $$stage || { echo "make test: stage $$stage failed"; exit 1; }; \
		times="$$times  $$stage $$(( $$(date +%s) - began )) s\n"; \
	done; \
	printf "make test: every stage passed; seconds per stage:\n$$times  total $$(( $$(date +%s) - start )) s\n"

unit: $(STAMP)
	$(BIN)/ruff check nine tests notebooks benchmarks
	$(BIN)/python -m pytest tests/unit -n 2 --durations=15

# Notebook tests: every notebook with the smoke profile, executed and checked by nbval; two kernels at a time,
# one thread each, so that two kernels never share a core between four threads.
notebooks: $(STAMP)
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	for nb in $(NOTEBOOKS); do \
		$(BIN)/papermill --prepare-only -p profile smoke $$nb $(SMOKE)/$$(basename $$nb) || exit 1; \
	done
	cd $(SMOKE) && OMP_NUM_THREADS=1 NINE_RUNS_DIR=$(CURDIR)/$(SMOKE)/runs $(BIN)/python -m pytest --nbval-lax -n 2 --dist loadscope -p no:cacheprovider --durations=20 .

# Retrain the cheapest committed run from scratch and compare every metric with results/.
reproduce: $(STAMP)
	rm -rf _build/reproduce
	$(BIN)/python -m nine reproduce --store _build/reproduce

book-check: $(STAMP)
	$(BIN)/python -m pytest tests/book -rs

# The number-sensitive checks once more in another CPU class: OpenBLAS, ATen and oneDNN told to use older kernels,
# which sum in another order than those of the machine that made the committed numbers. A stored evaluation of
# each kind recomputed, the page that computes its published numbers at build time (04) executed, and the
# cheapest committed run retrained: each must agree within its stated tolerance (bit-identity is reported).
OTHER_CPU := OPENBLAS_CORETYPE=Sandybridge ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2
other-cpu: $(STAMP)
	rm -rf _build/other-cpu && mkdir -p _build/other-cpu
	$(OTHER_CPU) $(BIN)/python -m pytest tests/unit/test_evaluations.py -k committed -rA -q
	$(OTHER_CPU) OMP_NUM_THREADS=1 NINE_NO_TRAINING=1 $(BIN)/papermill --no-progress-bar notebooks/04_generative.ipynb _build/other-cpu/04_generative.ipynb
	$(OTHER_CPU) NINE_OTHER_CPU_PAGES=_build/other-cpu $(BIN)/python -m pytest tests/other_cpu -rA -q
	$(OTHER_CPU) $(BIN)/python -m nine reproduce --store _build/other-cpu/reproduce

# Nothing a reader runs may change the evidence: the commands of the README (a rerun of a page with its own
# parameters, the evaluations listed, the gallery, the downloads of the built book) and every stage above leave
# the working tree as git has it (run on a clean clone, as CI does, the tree must be clean before and after).
clean-tree: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m nine rerun 02_gaussian_matching -p profile smoke -p d 2
	$(BIN)/python -m nine evaluations > /dev/null
	$(BIN)/python -m nine gallery
	test ! -d _build/html || $(BIN)/python -m nine downloads
	@changed="$$(git status --porcelain)"; if [ -n "$$changed" ]; then \
		echo "clean-tree: these paths changed:"; echo "$$changed"; exit 1; fi; echo "clean-tree: the working tree is as git has it"

# Regenerate the committed cpu-profile runs that are missing from results/ (delete one to retrain it)
# and the citable figures in book/figures/ (and their gallery, book/figures.md), the claims ledger in book/claims/
# and the result tables in results/, by executing every notebook with publish=True.
results: $(STAMP)
	mkdir -p _build/results
	for nb in $(NOTEBOOKS); do \
		NINE_RUNS_DIR=$(CURDIR)/results $(BIN)/papermill $$nb _build/results/$$(basename $$nb) -p publish True || exit 1; \
	done
	$(BIN)/python -m nine gallery
	rm -rf _build/.jupyter_cache  # the pages must be executed again from the new results

# Speed and memory figures (each script prints one figure per line) into results/bench.json.
bench: $(STAMP)
	cd benchmarks && for b in speed overhead critics throughput memory processes disentanglement; do \
		echo "== $$b"; $(BIN)/python $$b.py || exit 1; \
	done

# The GPU path in one command (a CUDA machine, about 8 minutes): results/bench-gpu.json.
# `python benchmarks/gpu.py --smoke` checks the same code on any machine in seconds (a unit test runs it).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf _build
