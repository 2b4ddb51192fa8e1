# Set-up, tests, lint and benchmarks. `make test` is what CI runs (.ci/run).
PY ?= python3
SLD_CORPUS ?= ../shared/sldbench
export SLD_CORPUS

.PHONY: install test lint typecheck-tree bench bench-quick ci-bench ci-gate ci-baseline

install:
	$(PY) -m pip install -q -e '.[dev,ray]'

test: install lint
	$(PY) -m pytest -q -m "not slow and not gpu"

# mypy and import-linter cannot follow the editable install's import hook (the folders are mapped onto `sld.*`),
# so they read a tree of links that lays the folders out as the installed package.
typecheck-tree:
	@rm -rf .typecheck && mkdir -p .typecheck/sld
	@for f in sld/*; do ln -s "$$PWD/$$f" .typecheck/sld/; done
	@for p in agent search tasks corpus; do ln -s "$$PWD/$$p" .typecheck/sld/$$p; done

lint: typecheck-tree
	$(PY) -m ruff check .
	cd .typecheck && MYPYPATH=. $(PY) -m mypy -p sld --config-file ../pyproject.toml
	cd .typecheck && lint-imports --config ../pyproject.toml

bench:
	sld bench --method sld --json bench/sld.json --markdown bench/sld.md

bench-quick:
	sld bench --method sld --budget-s 60 --json artifacts/quick.json --markdown artifacts/quick.md

# The research pipeline's quick benchmark (.ci/run, after `make test`): every task with a short search budget and
# no symbolic-regression backend, its report, and the gate against the stored baseline (docs/research-pipeline.md).
# A candidate cap, not the wall clock, ends each search (the budget is only a safety net), so the quick benchmark
# gives the same scores on a busy or an idle machine and the gate compares like with like.
CI_BUDGET_S ?= 600
CI_MAX_CANDIDATES ?= 40
CI_TASKS ?=
CI_BASELINE ?= bench/baseline.json
CI_TOLERANCE ?= 0.05
CI_NOTES ?=
ARTIFACTS ?= artifacts
QUICK_JSON ?= $(ARTIFACTS)/quick.json
QUICK_BENCH = sld bench --method sld --proposer offline --backend none --budget-s $(CI_BUDGET_S) --max-candidates $(CI_MAX_CANDIDATES) \
	--seed 0 --run-dir $(ARTIFACTS)/runs \
	--json $(QUICK_JSON) --markdown $(ARTIFACTS)/quick.md --report $(ARTIFACTS)/report $(if $(CI_TASKS),--tasks $(CI_TASKS))

ci-bench:
	@rm -rf $(ARTIFACTS)/runs $(ARTIFACTS)/report && mkdir -p $(ARTIFACTS)
	$(QUICK_BENCH)
	$(MAKE) --no-print-directory ci-gate QUICK_JSON=$(QUICK_JSON)

ci-gate:
	sld gate $(QUICK_JSON) --baseline $(CI_BASELINE)

# Store the last quick benchmark as the new baseline (review the diff of bench/baseline.json before committing).
ci-baseline:
	sld gate $(QUICK_JSON) --baseline $(CI_BASELINE) --update --tolerance $(CI_TOLERANCE) \
		--command-line "make ci-bench (CI_MAX_CANDIDATES=$(CI_MAX_CANDIDATES), CI_BUDGET_S=$(CI_BUDGET_S))" --notes "$(CI_NOTES)"
