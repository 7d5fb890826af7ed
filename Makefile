.PHONY: setup run test lint format bench
setup:
	scripts/setup
run:
	scripts/run
test:
	scripts/test
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy
format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .
bench: setup
	.venv/bin/python -m bench
