"""The service keeps its OpenAPI document: requests generated from ``/openapi.json`` (valid
and invalid, schemathesis + hypothesis, bounded and derandomised) against a real ``recpipe
serve`` process on a trained model and loaded vectors, with an API key. Any 5xx, an
undeclared status, or a body, header or content type the schema does not describe fails."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.serve import start, wait_ready
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

KEY = "fuzz-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = int(os.environ.get("RECPIPE_FUZZ_EXAMPLES", "100"))  # per operation and mode
# A schema-valid id or product line need not exist (404/422), and an invalid query value can
# serialise to a valid one ("null"): the checks are about what the service answers.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, positive_data_acceptance]  # a schema-valid request is answered 2xx or 404


@pytest.fixture(scope="module")
def served(stack: Stack) -> Iterator[str]:
    env = {**os.environ, **stack.settings().environment(), "RECPIPE_API_KEY": KEY}
    server, url = start(env)
    try:
        if not wait_ready(url, 60, key=KEY):
            server.kill()
            pytest.fail(f"recpipe serve did not become ready: {server.communicate()[1][-2000:]}")
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_answer_is_declared_and_no_input_is_a_server_error(served: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json", headers=AUTH)
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 16, [op.label for op in operations]  # the API (8) and the page's (8)
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (operation.query or operation.path_parameters or operation.body):
            continue  # nothing to make invalid (/health, /ready, /metrics)

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            response = case.call(base_url=served, headers=AUTH)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        call()
    print(f"fuzz ({mode.value}): {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert not [s for s in statuses if s >= 500]
    assert statuses[200 if mode is GenerationMode.POSITIVE else 422] > 0  # the generator reached the service
