"""The closed loop's storefront in process (``streaming.closed_loop.Storefront``): the service's
own code path, so that every list shown is logged as the HTTP service logs it."""

from __future__ import annotations

from typing import Any

from recpipe.api.service import Service
from recpipe.contracts.events import Activity
from recpipe.inference.recommend import Rules
from recpipe.streaming.closed_loop import Shown


class ServiceStorefront:
    def __init__(self, service: Service) -> None:
        self.service = service

    def show(self, session_id: str, customer: int | None, features: dict[str, Any], recent: list[Activity],
             *, popular: bool, k: int) -> Shown:
        rules = Rules(k=k, cart=tuple(a.product_code for a in recent if a.kind == "cart"), popular=popular)
        if customer is not None:
            rec = self.service.for_customer(customer, None, rules, recent, session_id)
        else:
            rec, _ = self.service.for_session(session_id, features, rules, recent)
        return Shown(rec.recommendation_id, rec.strategy, [i["id"] for i in rec.items], rec.variant)
