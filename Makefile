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

.PHONY: help setup run test test-faults lock clean eval-dedup docs query shell report
.PHONY: setup-gcp dataflow-dryrun lock-gcp bench-workers

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (CI images, this machine) nothing caches .pyc files and every
# process compiled Beam from source: `import apache_beam, pyarrow` 3.6 s -> 1.2 s per process (tests, workers, CLI).
$(STAMP): $(LOCK) pyproject.toml setup.py $(wildcard transforms/*.c)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

setup: $(STAMP) ## create .venv and install the pinned dependencies (requirements.lock)

run: $(STAMP) ## run the pipeline on the bundled seeds (INPUT=, OUTPUT=, PROFILE=, ARGS=) and print a summary
	$(PY) -m pipeline run --profile $(PROFILE) --input '$(INPUT)' --output '$(OUTPUT)' $(ARGS)

test: $(STAMP) ## run the test suite (the exhaustive fault-injection variants run in test-faults)
	$(PY) -m pytest -q $(ARGS)

test-faults: $(STAMP) $(GCP_STAMP) ## fault injection: kill -9 / disk full at every commit stage, concurrent writers, on local disk and on gs:// (fake-gcs-server)
	$(PY) -m pytest -q -o timeout=1800 -m faults tests/test_faults.py tests/test_faults_gcs.py tests/test_feeds_chunking.py tests/test_migrate.py $(ARGS)

docs: $(STAMP) ## regenerate the column reference in docs/schema.md from schemas/
	$(PY) -m schemas.docs

eval-dedup: $(STAMP) ## near-duplicate pair precision/recall on generated variants of real articles
	$(PY) -m bench.evaluate_dedup $(ARGS)

bench-pages: $(STAMP) ## full text: page fetch + extraction pages/s and ms/page over many local hosts (ARGS=; docs/fulltext.md)
	$(PY) -m bench.bench_pages throughput $(ARGS)

eval: $(STAMP) ## topic labels: precision/recall per label and language on each labeled set, off-topic rate on 10kGNAD (ARGS=--write stores eval/topics.json, docs/topics.md)
	$(PY) -m pipeline eval $(ARGS)

query: $(STAMP) ## run SQL over OUTPUT with the DuckDB views: Q="SELECT ..." (FORMAT=csv|json|parquet OUT=FILE)
	@test -n "$$Q" || { echo 'usage: make query Q="SELECT * FROM daily_topics" [FORMAT=csv OUT=file.csv]' >&2; exit 2; }
	$(PY) -m pipeline query --output '$(OUTPUT)' $(if $(FORMAT),--format $(FORMAT)) $(if $(OUT),--out '$(OUT)') "$$Q"

shell: $(STAMP) ## interactive DuckDB session over OUTPUT with the views loaded
	$(PY) -m pipeline shell --output '$(OUTPUT)'

report: $(STAMP) ## write OUTPUT/report/index.html with PNG charts (topics over time, sources, languages, dedup, dead letters)
	$(PY) -m pipeline report --output '$(OUTPUT)' $(ARGS)

.PHONY: test-browser report-screenshot
test-browser: $(STAMP) ## the HTML report in headless Chromium (needs the chromium package: apt-get install chromium)
	NEWSBEAM_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_report_browser.py $(ARGS)

report-screenshot: $(STAMP) ## refresh docs/report.png: the report of the bundled seeds in headless Chromium
	@tmp=$$(mktemp -d) && $(PY) -m pipeline run --quiet --no-summary --input 'data/seeds/*.txt' --output "$$tmp/out" \
		&& $(PY) -m analyst.screenshot --output "$$tmp/out" --png docs/report.png; rc=$$?; rm -rf "$$tmp"; exit $$rc

# --- Runners beyond one process (README: Runners) ---------------------------------------------
# apache-beam[gcp] is heavy: it lives in its own venv, from its own lock, so `make setup` stays lean.
GCP_VENV ?= .venv-gcp
GCP_LOCK := requirements-gcp.lock
GCP_STAMP := $(GCP_VENV)/.installed

$(GCP_STAMP): $(GCP_LOCK) pyproject.toml $(STAMP)
	@test -x $(GCP_VENV)/bin/python || $(PYTHON) -m venv $(GCP_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(GCP_VENV)/bin/python $(GCP_LOCK)
	$(UV) pip install --quiet --python $(GCP_VENV)/bin/python --no-deps -e .
	@touch $@

setup-gcp: $(GCP_STAMP) ## create .venv-gcp with apache-beam[gcp] (requirements-gcp.lock), for Dataflow

dataflow-dryrun: $(GCP_STAMP) ## build the Dataflow batch + streaming jobs offline (--dry_run, fake project); fails on any translation/pickling error
	$(GCP_VENV)/bin/python -W ignore::DeprecationWarning -m deploy.dataflow_dryrun $(ARGS)

lock-gcp: $(STAMP) ## re-resolve pyproject.toml with the gcp extras into requirements-gcp.lock
	$(UV) pip compile pyproject.toml --extra gcp --extra gcs-test --python-version 3.11 --generate-hashes --quiet -o $(GCP_LOCK)

bench-workers: $(STAMP) ## DirectRunner 1 vs 2 worker processes on the same input (INPUT=, ARGS=)
	$(PY) -m bench.bench_workers --input '$(INPUT)' $(ARGS)

FEEDS ?= configs/feeds.yaml
INTERVAL ?= 300

.PHONY: feeds watch
feeds: $(STAMP) ## fetch every feed of FEEDS once (default configs/feeds.yaml) into OUTPUT and print a summary
	$(PY) -m pipeline run --profile $(PROFILE) --feeds '$(FEEDS)' --output '$(OUTPUT)' $(ARGS)

watch: $(STAMP) ## poll FEEDS every INTERVAL seconds into OUTPUT until Ctrl-C (ARGS="--max-polls N")
	$(PY) -m pipeline watch --profile $(PROFILE) --feeds '$(FEEDS)' --output '$(OUTPUT)' --interval $(INTERVAL) $(ARGS)

BENCH_ARTICLES ?= 10000

.PHONY: bench bench-language
bench: $(STAMP) ## benchmark Beam (1, 2 workers) vs a plain loop, profiles local+fast (BENCH_ARTICLES=10000, ARGS=); writes bench/results.json + bench/results.md; exit 2 without ../shared
	$(PY) -m pipeline bench --articles $(BENCH_ARTICLES) $(ARGS)

bench-language: $(STAMP) ## language tagging per profile: accuracy (lingua sentences/word pairs, 10kGNAD), µs per text, reliability curves; writes bench/language.json, docs/language.md
	$(PY) -m pipeline bench --language $(ARGS)

# datatrove lives in its own environment (.venv-peers, requirements-peers.lock = the main extras + peers),
# so `make` keeps .venv exactly as requirements.lock says.
PEERS_VENV ?= .venv-peers
PEERS_LOCK := requirements-peers.lock
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): $(PEERS_LOCK) pyproject.toml $(STAMP)
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(PEERS_VENV)/bin/python $(PEERS_LOCK)
	$(UV) pip install --quiet --python $(PEERS_VENV)/bin/python --no-deps -e .
	@touch $@

.PHONY: bench-peers lock-peers
bench-peers: $(PEERS_STAMP) ## datatrove's equivalent pipeline next to newsbeam beam-1 + loop, profile fast, in .venv-peers (BENCH_ARTICLES=, ARGS=); prints only
	$(PEERS_VENV)/bin/python -m pipeline bench --articles $(BENCH_ARTICLES) --profiles fast --variants beam-1,loop,datatrove --no-write $(ARGS)

lock-peers: $(STAMP) ## re-resolve pyproject.toml with the peers extra into requirements-peers.lock
	$(UV) pip compile pyproject.toml --extra dev --extra fast --extra eval --extra peers --python-version 3.11 \
		--generate-hashes --quiet -o $(PEERS_LOCK)

lock: ## re-resolve pyproject.toml into requirements.lock (needs the package registry)
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(UV) pip compile pyproject.toml --extra dev --extra fast --extra report --extra eval --python-version 3.11 \
		--generate-hashes --quiet -o $(LOCK)

clean: ## remove the output and caches (keeps .venv)
	rm -rf output .pytest_cache build *.egg-info
