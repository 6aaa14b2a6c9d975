"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A small shop with a trained model served from the embedded PostgreSQL + pgvector
    (one per test module: a module may stop, restart or retrain it)."""
    with running_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
