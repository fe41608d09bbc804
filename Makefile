# Two entry points for a fresh machine: `make serve` and `make test`. Both create .venv on first use.
# `make serve` installs what the service needs (the runtime dependencies, as the container image does);
# `make test` adds the `test` extras (the real MLflow and Databricks clients, pytest, a browser driver...).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test install test-clients-mlflow318

$(BIN)/.installed-runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed-runtime pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed-runtime

serve: $(BIN)/.installed-runtime
	$(BIN)/registry serve $(ARGS)

test: $(BIN)/.installed-test
	$(BIN)/pytest $(ARGS)

# The tests that drive the real clients, again in a second environment with the next MLflow client (.venv has
# the pinned mlflow 3.17.2); `.ci/run` runs both. mlflow 3.18.0 requires mlflow-tracing==3.18.0, which the
# package index lacks: mlflow-skinny 3.18.0 (the `mlflow318` extra) contains its files, so mlflow 3.18.0 goes
# on top of it without its dependencies (the rest of them are 3.17.2's, already installed with `test`).
MLFLOW_318 := 3.18.0
VENV_318 ?= .venv-mlflow318
CLIENT_TESTS := tests/system/test_mlflow_client.py tests/system/test_mlflow_parity.py \
                tests/system/test_mlflow_pyfunc.py tests/system/test_mlflow_auth_client.py \
                tests/system/test_databricks_sdk.py tests/system/test_mlflow_webhooks.py

$(VENV_318)/bin/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV_318)
	$(VENV_318)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_318)/bin/python -m pip install --quiet -e '.[test]'
	$(VENV_318)/bin/python -m pip uninstall --quiet --yes mlflow mlflow-skinny mlflow-tracing
	$(VENV_318)/bin/python -m pip install --quiet -e '.[mlflow318]'
	$(VENV_318)/bin/python -m pip install --quiet --no-deps mlflow==$(MLFLOW_318)
	$(VENV_318)/bin/python -c "import mlflow; assert mlflow.__version__ == '$(MLFLOW_318)', mlflow.__version__"
	touch $@

test-clients-mlflow318: $(VENV_318)/bin/.installed
	$(VENV_318)/bin/pytest $(CLIENT_TESTS) $(ARGS)
