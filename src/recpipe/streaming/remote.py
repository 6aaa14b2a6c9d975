"""The seed's set-up: the transformation asks a running inference service over HTTP instead of
using the model and pgvector in-process (``RECPIPE_INFERENCE_URL``: ``recpipe serve``, or the
same app behind a Lambda Function URL).

Per event: a known customer's recommendations from ``GET /recommendations/{customer}`` (cart
left out, in stock, their features for when they have no stored embedding); a visitor's from
``POST /user_embeddings`` (the whole batch's visitors in one call) then ``POST /items_from_user``;
similar items from ``GET /items_from_item`` for the latest browsed product the service knows.
The in-process path needs three database round trips per batch; this needs a call or two per
event (bench/stream.py measures the difference). A service that cannot be reached or answers
5xx fails the invocation, so Firehose retries it; the record's shape is the in-process one.
One difference: the seed's ``/items_from_user`` and ``/items_from_item`` have no stock rule, so
a visitor's recommendations and similar items may include products out of stock here.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

from recpipe.contracts.events import SIMILAR_ROUNDS, STREAM_K, EnrichedRecord, Event, Item, enriched
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
        if not events:
            return []
        visitors = [i for i, e in enumerate(events) if e.customer_number is None]
        embeddings = self._call("POST", "/user_embeddings", body=[
            {"city": events[i].city, "country": events[i].country, "creditlimit": events[i].credit_limit}
            for i in visitors])[0] if visitors else []
        by_visitor = dict(zip(visitors, embeddings, strict=True))
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        out = []
        for i, e in enumerate(events):
            cart = set(e.cart)
            if e.customer_number is not None:
                query = {"k": self.k, "cart": sorted(cart), "exclude_bought": "false", "in_stock": "true"}
                query |= {k: v for k, v in (("city", e.city), ("country", e.country),
                                            ("credit_limit", e.credit_limit)) if v is not None}
                answer, _ = self._call("GET", f"/recommendations/{e.customer_number}", query)
                items: list[Item] = [{"id": x["id"], "score": x["score"]} for x in answer["items"]]
                strategy, version, rid = answer["strategy"], answer["model_version"], answer["recommendation_id"]
            else:
                found, headers = self._call("POST", "/items_from_user", {"limit": self.k + len(cart)}, by_visitor[i])
                items = [x for x in found if x["id"] not in cart][:self.k]
                strategy, version = "features", headers.get("x-model-version") or headers.get("X-Model-Version")
                rid = headers.get("x-recommendation-id") or headers.get("X-Recommendation-Id")
            code, alike = self._similar(e, cart)
            out.append(enriched(e, items, code, alike, recommendation_id=rid or str(uuid.uuid4()),
                                model_version=version, strategy=strategy, recommended_at=now))
        return out

    def _similar(self, e: Event, cart: set[str]) -> tuple[str | None, list[Item]]:
        for browsed in list(reversed(e.browse_history))[:SIMILAR_ROUNDS]:
            code = browsed.product_code
            found, _ = self._call("GET", "/items_from_item", {"item_id": code, "limit": self.k + len(cart) + 1})
            if found is not None:
                return code, [x for x in found if x["id"] not in cart and x["id"] != code][:self.k]
        return None, []

