"""The same app as an AWS Lambda behind a Function URL (or API Gateway), through Mangum.

Handler: ``recpipe.api.lambda_handler.handler``. Settings come from the function's
environment (RECPIPE_ARTIFACTS_URL=s3://…, RECPIPE_VECTORS_URL=postgresql://…).
"""

from __future__ import annotations

from typing import Any

_handler: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:  # once per execution environment; reused across invocations
        from mangum import Mangum

        from recpipe.api.app import create_app

        _handler = Mangum(create_app(), lifespan="off")
    return _handler(event, context)
