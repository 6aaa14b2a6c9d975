"""``recpipe vectors load`` as an AWS Lambda: ``handler(event, context)``.

The artifacts bucket invokes it when ``model/manifest.json`` is written: ``recpipe train``
publishes that file last, so the model is whole by then. Any other event (``aws lambda invoke
--function-name <name> out.json``) loads on demand. The answer is ``vectors load --json``'s.

Settings come from the function's environment, as the CLI reads them: ``RECPIPE_ARTIFACTS_URL``,
``RECPIPE_VECTORS_URL`` with ``RECPIPE_VECTORS_SECRET`` (the password stays in Secrets
Manager), and optionally ``RECPIPE_SOURCE_URL`` (+ ``RECPIPE_SOURCE_SECRET``) to load the
catalog and purchases too. A failed load raises, so the invocation fails and is retried (S3's
asynchronous invocation retries twice); the database keeps serving the previous load. The
promotion gate applies (``RECPIPE_GATE_TOLERANCE``): a model it refuses is loaded, not served,
and the answer says so (``"promoted": false`` and the verdict); the registry's own copies
(``_versions/``) load nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from recpipe.contracts.artifacts import MANIFEST, VERSIONS

log = logging.getLogger("recpipe.vectors.lambda")


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    from recpipe.adapters import Backends
    from recpipe.config import load_settings
    from recpipe.vectors.pipeline import run

    keys = published_keys(event or {})
    if keys is not None and not any(key.endswith(MANIFEST) and f"{VERSIONS}/" not in key for key in keys):
        log.info("not a model manifest, nothing to load: %s", keys)
        return {"loaded": False, "keys": keys}
    settings = load_settings(env_file=None)
    store, name = Backends(settings).artifacts()
    with_catalog = settings.origins["source_url"].startswith("environment")
    source = Backends(settings).source() if with_catalog else None
    try:
        result = run(Backends(settings).vectors(), store, name, source=source,
                     tolerance=settings.gate_tolerance, keep=settings.models_keep)
    finally:
        if source is not None:
            source.close()
    log.info("loaded model %s: %d items, %d users; %s", result.model_version, result.items, result.users,
             "serving it" if result.promoted else f"not served, the gate failed: {(result.gate or {}).get('reason')}")
    return {"loaded": True, **result.to_json()}


def published_keys(event: dict[str, Any]) -> list[str] | None:
    """The object keys of an S3 notification (None: not one, a load on demand)."""
    records = event.get("Records")
    if not isinstance(records, list):
        return None
    return [r["s3"]["object"]["key"] for r in records
            if isinstance(r, dict) and isinstance(r.get("s3"), dict) and "key" in r["s3"].get("object", {})]
