"""Schemathesis against a real server, driven by the server's own OpenAPI document.

Every operation gets FUZZ_EXAMPLES generated requests (1,000 in `make test`, 20x that in
`make fuzz`), valid and invalid alike, and every answer must be no server error and conform to
what the document says for its status: documented status code, content type, body schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.servers import running_server

pytestmark = pytest.mark.integration
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(titanic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # --max-in-flight 0: the fuzzer must reach validation, never the load shedder. The log is
    # on: POST /feedback without one is a 501 by design, which the fuzzer would count a fault.
    log_db = f"sqlite:///{tmp_path_factory.mktemp('fuzz-log') / 'predictions.db'}"
    flags = ("--max-in-flight", "0", "--max-rows", "50", "--log-db", log_db)
    with running_server(titanic_model_dir, *flags) as s:
        yield s.url


def test_no_server_error_and_answers_match_the_document(served: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    failures: dict[str, str] = {}
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        run = _fuzzer(operation, served, counts)
        try:
            run()
        except BaseException as exc:  # hypothesis raises failure groups; keep every first one
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failures[operation.label] = str(exc)[:2000]
    print(f"schemathesis: {sum(counts.values())} examples over {len(counts)} operations:")
    # Fewer than EXAMPLES where the operation's input space is smaller (GET /health has one).
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    assert len(counts) >= 22, (counts, list(failures.items())[:2])
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _fuzzer(operation: Any, served: str, counts: dict[str, int]) -> Any:
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        counts[label] = counts.get(label, 0) + 1
        case.call_and_validate(base_url=served, checks=CHECKS)

    return run
