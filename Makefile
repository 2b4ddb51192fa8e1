# Set-up, tests, lint and benchmarks. `make test` is what CI runs (.ci/run).
PY ?= python3
SLD_CORPUS ?= ../shared/sldbench
export SLD_CORPUS

.PHONY: install test lint typecheck-tree bench bench-quick

install:
	$(PY) -m pip install -q -e '.[dev]'

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
	PYTHONPATH=.typecheck lint-imports --config pyproject.toml

bench:
	sld bench --method sld --json bench/sld.json --markdown bench/sld.md

bench-quick:
	sld bench --method sld --budget-s 60 --json artifacts/quick.json --markdown artifacts/quick.md
