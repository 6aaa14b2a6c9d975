"""The API key middleware and the loopback test behind `recpipe serve --host`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from recpipe.api.auth import ApiKey, is_loopback

KEY = "k" * 24


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _status(path: str, headers: dict[str, str]) -> int:
    async def call() -> int:
        transport = httpx.ASGITransport(app=ApiKey(_ok, KEY))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path, headers=headers)).status_code

    return asyncio.run(call())


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"Authorization": KEY}, 401), ({"Authorization": f"Bearer {KEY}x"}, 401),
    ({"Authorization": f"Basic {KEY}"}, 401), ({"Authorization": f"Bearer {KEY}"}, 200),
    ({"Authorization": f"bearer {KEY}"}, 200),  # the scheme is case-insensitive
])
def test_every_path_but_health_needs_the_key(headers: dict[str, str], status: int) -> None:
    assert _status("/recommendations/1", headers) == status
    assert _status("/health", headers) == 200


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
