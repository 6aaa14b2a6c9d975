"""The API key: when ``RECPIPE_API_KEY`` is set, every request but ``/health``, the page's
files (``/``, ``/static/…``) and the API's documentation (``/docs``, ``/redoc``,
``/openapi.json``, which declares the bearer scheme) must carry
``Authorization: Bearer <key>`` (compared in constant time). The key is never logged, shown by
``recpipe config`` or put in an error. ``recpipe serve`` refuses to listen on an address that
is not loopback without a key, unless told ``--insecure``."""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

# the page's files and the API's documentation hold no data: they ask for the key (the page's
# dialog, Swagger's Authorize button, which the bearer scheme declared in /openapi.json shows)
OPEN_PATHS = frozenset({"/health", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/static/", "/static-offline-docs/")


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` ("localhost", 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


class ApiKey:
    """ASGI middleware; a wrong or missing key is a 401 in the service's error shape."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self._key = key.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                given = value
                break
        scheme, _, token = given.partition(b" ")
        # the scheme is case-insensitive (RFC 7235); the token is compared in constant time
        if hmac.compare_digest(token.strip(), self._key) and scheme.lower() == b"bearer":
            await self.app(scope, receive, send)
            return
        problem = "wrong API key" if given else "no API key"
        body = json.dumps({"error": f"{problem}: this service needs one",
                           "hint": "send the header 'Authorization: Bearer <key>' with the key the service was "
                                   "started with (RECPIPE_API_KEY)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


def document(app: Any, *, keyed: bool) -> None:
    """The OpenAPI document as the service runs: with a key, ``Authorization: Bearer`` declared
    for every operation (so /docs offers Authorize and sends the key with each try); without
    one, no operation lists the 401 it cannot give."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            if keyed:
                doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                    "type": "http", "scheme": "bearer", "description": "the service's RECPIPE_API_KEY"}
                doc["security"] = [{"bearer": []}]
            else:
                for operations in doc.get("paths", {}).values():
                    for operation in operations.values():
                        operation.get("responses", {}).pop("401", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
