"""AWS events as Lambda receives them, for tests that call the handlers."""

from __future__ import annotations

from typing import Any


def function_url_event(path: str, query: str = "", method: str = "GET") -> dict[str, Any]:
    """A Lambda Function URL (payload 2.0) request without a body."""
    host = "abc.lambda-url.us-east-1.on.aws"
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"host": host},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "test"},
                               "domainName": host, "stage": "$default", "requestId": "id", "accountId": "anonymous",
                               "apiId": "abc", "domainPrefix": "abc", "time": "28/Nov/2026:10:00:00 +0000",
                               "timeEpoch": 0},
            "isBase64Encoded": False}
