"""Shared fixtures live in tests/fixtures/, one module per area, loaded here as plugins."""

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.servers",
    "tests.fixtures.postgres",
    "tests.fixtures.mlflow_stack",
]
