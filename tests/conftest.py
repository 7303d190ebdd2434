"""Shared fixtures live in tests/fixtures/, one module per area, loaded here as plugins;
tests/fixtures/ci.py makes a skip a failure under CI=true."""

pytest_plugins = [
    "tests.fixtures.ci",
    "tests.fixtures.models",
    "tests.fixtures.servers",
    "tests.fixtures.postgres",
    "tests.fixtures.mlflow_stack",
    "tests.fixtures.browser",
    "tests.fixtures.dask_cluster",
    "tests.fixtures.docker",
]
