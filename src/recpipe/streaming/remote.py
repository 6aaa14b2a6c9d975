"""The seed's set-up: the transformation asks a running inference service over HTTP instead of
using the model and pgvector in-process (``RECPIPE_INFERENCE_URL``: ``recpipe serve``, or the
same app behind a Lambda Function URL).

Per event: a known customer's recommendations from ``GET /recommendations/{customer}``, a
visitor's from ``GET /sessions/{session_id}/recommendations``, each with the event's history as
``recent`` (its latest ``MAX_RECENT`` products), its cart, in stock, and its features for when
there is no stored embedding; similar items from ``GET /items_from_item`` for the latest browsed
product the service knows. The in-process path needs a few database round trips per batch;
this needs a call or two per event (bench/stream.py measures the difference). A service that
cannot be reached or answers 5xx fails the invocation, so Firehose retries it; the record's
shape is the in-process one. Differences: the seed's ``/items_from_item`` has no stock rule, so
similar items may include products out of stock here, and this path does not write the session
store (the service only reads it).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from recpipe.contracts.events import SIMILAR_ROUNDS, STREAM_K, EnrichedRecord, Event, Item, enriched
from recpipe.contracts.limits import CODE_LENGTH, MAX_LISTED, MAX_RECENT
from recpipe.errors import ServiceError

K = STREAM_K


class RemoteEnricher:
    def __init__(self, url: str, *, k: int = K, timeout: float = 10.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")  # a Function URL ends in "/"
        self.k = k
        self.timeout = timeout
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}  # the service's RECPIPE_API_KEY

    def _call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
              ) -> tuple[Any, dict[str, str]]:
        """The JSON answer and its headers; None for a 404 (an id the service does not know)."""
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query, doseq=True)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {**self._auth, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http(s) only)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 (http(s) only)
                return json.loads(answer.read()), dict(answer.headers.items())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None, {}
            detail = exc.read()[:300].decode(errors="replace")
            raise ServiceError(f"the inference service {self.url} answered {exc.code} to {method} {path}: {detail}",
                               hint="retry shortly" if exc.code >= 500 else "this is a bug in recpipe") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ServiceError(f"cannot reach the inference service {self.url}: {exc}",
                               hint="check RECPIPE_INFERENCE_URL and that the service runs") from exc

    def enrich(self, events: Sequence[Event]) -> list[EnrichedRecord]:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        out = []
        for e in events:
            recent = [b.product_code for b in e.browse_history if len(b.product_code) <= CODE_LENGTH][-MAX_RECENT:]
            query: dict[str, Any] = {"k": self.k, "recent": ",".join(recent), "cart": sorted(c for c in set(e.cart) if len(c) <= CODE_LENGTH)[:MAX_LISTED],
                                     "in_stock": "true"}
            query |= {k: v for k, v in (("city", e.city), ("country", e.country),
                                        ("credit_limit", e.credit_limit)) if v is not None}
            path = f"/recommendations/{e.customer_number}" if e.customer_number is not None else \
                f"/sessions/{urllib.parse.quote(e.session_id, safe='')}/recommendations"
            answer, _ = self._call("GET", path, query)
            items: list[Item] = [{"id": x["id"], "score": x["score"]} for x in answer["items"]]
            code, alike = self._similar(e, {b.product_code for b in e.browse_history})
            out.append(enriched(e, items, code, alike, recommendation_id=answer["recommendation_id"],
                                model_version=answer["model_version"], strategy=answer["strategy"],
                                recommended_at=now))
        return out

    def _similar(self, e: Event, seen: set[str]) -> tuple[str | None, list[Item]]:
        for browsed in list(reversed(e.browse_history))[:SIMILAR_ROUNDS]:
            code = browsed.product_code
            found, _ = self._call("GET", "/items_from_item", {"item_id": code, "limit": self.k + len(seen) + 1})
            if found is not None:
                return code, [x for x in found if x["id"] not in seen and x["id"] != code][:self.k]
        return None, []

