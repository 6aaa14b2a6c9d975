"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A small shop with a trained model served from the embedded PostgreSQL + pgvector
    (one per test module: a module may stop, restart or retrain it)."""
    with running_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[str]:
    """``recpipe serve``'s app on a real uvicorn server on 127.0.0.1, in front of the stack."""
    from recpipe.api.app import create_app
    from recpipe.api.background import serving
    from recpipe.api.service import Service

    settings = stack.settings()
    with serving(create_app(settings, service=Service(settings, ef_search=200, check_every=0.2))) as url:
        yield url


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client
