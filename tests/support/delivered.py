"""Sink objects as the delivery and the service write them, for the online ETL's tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def record(event_id: str | None, session: str, at: str, history: list[tuple[str, str, str | None]],
           recommendation: str, *, customer: int | None = 103, items: tuple[str, ...] = ("S1", "S2", "S3"),
           model: str = "m1", strategy: str = "stored") -> dict[str, Any]:
    """An enriched record; ``history`` is (product, kind, recommendation_id) oldest first."""
    browsed = [{"product_code": code, "quantity": 1, "in_shopping_cart": kind != "browse"}
               | ({"purchased": True} if kind == "purchase" else {})
               | ({"recommendation_id": rid} if rid else {}) for code, kind, rid in history]
    event = {"session_id": session, "customer_number": customer, "city": "Nantes", "country": "France",
             "credit_limit": 1000.0, "event_time": at, "browse_history": browsed}
    return ({"event_id": event_id} if event_id else {}) | event | {
        "recommended_items": [{"id": i, "score": 0.5} for i in items],
        "similar_items": {"product_code": history[-1][0] if history else None,
                          "similar_items": [{"id": "S9", "score": 0.4}]},
        "recommendation_id": recommendation, "model_version": model, "strategy": strategy, "recommended_at": at}


def served(recommendation: str, at: str, items: tuple[str, ...], *, customer: int | None = 103,
           session: str | None = None, model: str = "m1", strategy: str = "stored") -> dict[str, Any]:
    return {"recommendation_id": recommendation, "served_at": at, "customer_number": customer, "session_id": session,
            "model_version": model, "strategy": strategy, "variant": None, "items": list(items)}


def put(sink: Path, hour: str, name: str, lines: list[Any], *, gzipped: bool = False, prefix: str = "") -> str:
    """Write one object under ``prefix`` + ``hour`` (YYYY/MM/DD/HH); dicts are dumped, bytes kept."""
    key = f"{prefix}{hour}/{name}"
    data = b"".join((json.dumps(line).encode() if isinstance(line, dict) else line) + b"\n" for line in lines)
    path = sink / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return key


def shop_of_edges(sink: Path) -> None:
    """Duplicates, late and out-of-order events, bad lines, gzip, failed records and the service's log."""
    h1 = [("S1", "browse", "r-0")]
    h2 = [*h1, ("S2", "cart", "r-1")]
    h3 = [("S1", "browse", "r-0"), ("S2", "purchase", "r-1")]
    put(sink, "2026/12/05/07", "recpipe-1-2026-12-05-07-00-00-a", [
        record("e1", "s1", "2026-12-05T07:00:00Z", h1, "r-1"),
        record("e2", "s1", "2026-12-05T07:00:05Z", h2, "r-2"),
        record("e2", "s1", "2026-12-05T07:00:05Z", h2, "r-2b"),  # a producer's repeat: kept once
        b"not json", b"[1, 2]",
        json.dumps({"session_id": "s9", "browse_history": []}).encode(),  # no event_time
        json.dumps({k: v for k, v in record("e7", "s7", "2026-12-05T07:00:00Z", h1, "r-7").items()
                    if k != "model_version"}).encode(),  # an event, not enriched
        record(None, "seed", "2026-12-05T07:00:01Z", [("S3", "browse", None)], "r-8", customer=None),  # no id
    ])
    put(sink, "2026/12/05/08", "recpipe-1-2026-12-05-08-00-00-b", [
        record("e3", "s1", "2026-12-05T08:00:00Z", h3, "r-3"),  # bought what it carted
        record("e0", "s0", "2026-12-04T23:59:00Z", [("S4", "browse", None)], "r-4"),  # late: yesterday's
        record("e5", "s5", "2026-12-05T08:10:00Z", [("S2", "browse", None), ("S1", "cart", "r-5")], "r-6"),
        record("e4", "s5", "2026-12-05T08:05:00Z", [("S2", "browse", None)], "r-5"),  # out of order
    ], gzipped=True)
    put(sink, "2026/12/05/08", "x", [{"anything": 1}], prefix="processing-failed/")
    put(sink, "2026/12/05/08", "api-1", [served("q-1", "2026-12-05T08:01:00Z", ("S1", "S5")),
                                          served("q-2", "2026-12-05T08:02:00Z", ("S2",), customer=None, session="s5"),
                                          {"recommendation_id": "q-3"}], prefix="served/")
