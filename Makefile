# newsbeam: `make run` and `make test` work on a fresh clone; everything else builds on them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
LOCK := requirements.lock
STAMP := $(VENV)/.installed

INPUT ?= data/seeds/*.txt
OUTPUT ?= ./output
PROFILE ?= local
ARGS ?=

.PHONY: help setup run test lock clean eval-dedup docs query shell report
.PHONY: setup-gcp dataflow-dryrun lock-gcp bench-workers

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

setup: $(STAMP) ## create .venv and install the pinned dependencies (requirements.lock)

run: $(STAMP) ## run the pipeline on the bundled seeds (INPUT=, OUTPUT=, PROFILE=, ARGS=) and print a summary
	$(PY) -m pipeline run --profile $(PROFILE) --input '$(INPUT)' --output '$(OUTPUT)' $(ARGS)

test: $(STAMP) ## run the test suite
	$(PY) -m pytest -q $(ARGS)

docs: $(STAMP) ## regenerate the README column reference from schemas/
	$(PY) -m pipeline.readme

eval-dedup: $(STAMP) ## near-duplicate pair precision/recall on generated variants of real articles
	$(PY) -m pipeline.evaluate_dedup $(ARGS)

eval: $(STAMP) ## topic labels: precision/recall per label on the dev sets, off-topic rate on 10kGNAD (ARGS=)
	$(PY) -m pipeline eval $(ARGS)

query: $(STAMP) ## run SQL over OUTPUT with the DuckDB views: Q="SELECT ..." (FORMAT=csv|json|parquet OUT=FILE)
	@test -n "$$Q" || { echo 'usage: make query Q="SELECT * FROM daily_topics" [FORMAT=csv OUT=file.csv]' >&2; exit 2; }
	$(PY) -m pipeline query --output '$(OUTPUT)' $(if $(FORMAT),--format $(FORMAT)) $(if $(OUT),--out '$(OUT)') "$$Q"

shell: $(STAMP) ## interactive DuckDB session over OUTPUT with the views loaded
	$(PY) -m pipeline shell --output '$(OUTPUT)'

report: $(STAMP) ## write OUTPUT/report/index.html with PNG charts (topics over time, sources, languages, dedup, dead letters)
	$(PY) -m pipeline report --output '$(OUTPUT)' $(ARGS)

# --- Runners beyond one process (README: Runners) ---------------------------------------------
# apache-beam[gcp] is heavy: it lives in its own venv, from its own lock, so `make setup` stays lean.
GCP_VENV ?= .venv-gcp
GCP_LOCK := requirements-gcp.lock
GCP_STAMP := $(GCP_VENV)/.installed

$(GCP_STAMP): $(GCP_LOCK) pyproject.toml $(STAMP)
	@test -x $(GCP_VENV)/bin/python || $(PYTHON) -m venv $(GCP_VENV)
	$(UV) pip sync --quiet --python $(GCP_VENV)/bin/python $(GCP_LOCK)
	$(UV) pip install --quiet --python $(GCP_VENV)/bin/python --no-deps -e .
	@touch $@

setup-gcp: $(GCP_STAMP) ## create .venv-gcp with apache-beam[gcp] (requirements-gcp.lock), for Dataflow

dataflow-dryrun: $(GCP_STAMP) ## build the Dataflow batch + streaming jobs offline (--dry_run, fake project); fails on any translation/pickling error
	$(GCP_VENV)/bin/python -W ignore::DeprecationWarning -m pipeline.dataflow_dryrun $(ARGS)

lock-gcp: $(STAMP) ## re-resolve pyproject.toml with the gcp extra into requirements-gcp.lock
	$(UV) pip compile pyproject.toml --extra gcp --python-version 3.11 --generate-hashes --quiet -o $(GCP_LOCK)

bench-workers: $(STAMP) ## DirectRunner 1 vs 2 worker processes on the same input (INPUT=, ARGS=)
	$(PY) -m pipeline.bench_workers --input '$(INPUT)' $(ARGS)

FEEDS ?= configs/feeds.yaml
INTERVAL ?= 300

.PHONY: feeds watch
feeds: $(STAMP) ## fetch every feed of FEEDS once (default configs/feeds.yaml) into OUTPUT and print a summary
	$(PY) -m pipeline run --profile $(PROFILE) --feeds '$(FEEDS)' --output '$(OUTPUT)' $(ARGS)

watch: $(STAMP) ## poll FEEDS every INTERVAL seconds into OUTPUT until Ctrl-C (ARGS="--max-polls N")
	$(PY) -m pipeline watch --profile $(PROFILE) --feeds '$(FEEDS)' --output '$(OUTPUT)' --interval $(INTERVAL) $(ARGS)

BENCH_ARTICLES ?= 10000

.PHONY: bench bench-language bench-peers
bench: $(STAMP) ## benchmark Beam (1, 2 workers) vs a plain loop (and datatrove when installed), profiles local+fast (BENCH_ARTICLES=10000, ARGS=); writes bench/results.json, docs/bench.md
	$(PY) -m pipeline bench --articles $(BENCH_ARTICLES) $(ARGS)

bench-peers: $(STAMP) ## datatrove's equivalent pipeline next to newsbeam (fast profile; needs the peers extra); prints only
	$(PY) -m pipeline bench --articles $(BENCH_ARTICLES) --profiles fast --variants beam-1,loop,datatrove --no-write $(ARGS)

bench-language: $(STAMP) ## language detectors: accuracy and speed, language.max_chars trade-off; writes bench/language.json, the README
	$(PY) -m pipeline bench --language $(ARGS)

lock: ## re-resolve pyproject.toml into requirements.lock (needs the package registry)
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(UV) pip compile pyproject.toml --extra dev --extra fast --extra report --python-version 3.11 \
		--generate-hashes --quiet -o $(LOCK)

clean: ## remove the output and caches (keeps .venv)
	rm -rf output .pytest_cache build *.egg-info
