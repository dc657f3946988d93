# The two commands: `make up` runs the pipeline, `make test` runs the test suite.
# Both set up .venv on first use (scripts/bootstrap).

.PHONY: up test lint bootstrap

bootstrap:
	@./scripts/bootstrap

up: bootstrap
	@echo "kup: starting the Prefect server and serving the deployments; the first refresh follows within a minute"
	@.venv/bin/kup up

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest -m "slow or not slow" -p no:cacheprovider

lint: bootstrap
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
