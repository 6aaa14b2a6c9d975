"""Attribution: a shown list (an impression) earns a click, a cart or a purchase when an event
names its ``recommendation_id`` on a product the list held (in ``items`` or ``similar_items``).

Per impression the outcomes are yes or no (a list clicked twice is one click), each implying
the one before (a cart is a click, a purchase a cart), so each rate is a proportion of
impressions, given with its Wilson score interval at 95%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054

# Over ``impressions`` and ``events`` (``recpipe.contracts.activity``), in DuckDB: what each list earned.
EARNED = """
WITH pointed AS (
    SELECT e.recommendation_id, e.kind, e.product_code, i.recommendation_id IS NOT NULL AS known,
           list_contains(i.items, e.product_code) OR list_contains(i.similar_items, e.product_code) AS listed
    FROM events e LEFT JOIN impressions i ON i.recommendation_id = e.recommendation_id
    WHERE e.recommendation_id IS NOT NULL
), earned AS (
    SELECT recommendation_id, TRUE AS clicked, bool_or(kind IN ('cart', 'purchase')) AS carted,
           bool_or(kind = 'purchase') AS purchased
    FROM pointed WHERE listed GROUP BY recommendation_id
)
"""
OUTCOMES = EARNED + """
SELECT i.source, i.model_version, i.strategy, COALESCE(i.variant, '') AS variant,
       strftime(date_trunc('hour', i.served_at), '%Y-%m-%dT%H:00Z') AS hour,
       COUNT(*) AS impressions, COUNT(e.clicked) AS clicks,
       COUNT(*) FILTER (WHERE e.carted) AS carts, COUNT(*) FILTER (WHERE e.purchased) AS purchases
FROM impressions i LEFT JOIN earned e ON e.recommendation_id = i.recommendation_id
GROUP BY ALL
"""
POINTED = """
SELECT COUNT(*) AS pointing,
       COUNT(*) FILTER (WHERE i.recommendation_id IS NOT NULL
                        AND (list_contains(i.items, e.product_code) OR list_contains(i.similar_items, e.product_code)))
           AS attributed,
       COUNT(*) FILTER (WHERE i.recommendation_id IS NULL) AS unknown_list
FROM events e LEFT JOIN impressions i ON i.recommendation_id = e.recommendation_id
WHERE e.recommendation_id IS NOT NULL
"""


@dataclass(frozen=True)
class Rate:
    rate: float
    low: float  # the Wilson score interval at 95%
    high: float

    @classmethod
    def of(cls, hits: int, n: int, z: float = Z95) -> Rate:
        if n == 0:
            return cls(0.0, 0.0, 1.0)
        p = hits / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return cls(p, 0.0 if hits == 0 else max(0.0, centre - half), 1.0 if hits == n else min(1.0, centre + half))

    def overlaps(self, other: Rate) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class Line:
    """One group's figures: impressions and what they earned."""

    source: str
    model_version: str
    strategy: str
    variant: str
    hour: str  # "" for every hour together
    impressions: int
    clicks: int
    carts: int
    purchases: int

    @property
    def ctr(self) -> Rate:
        return Rate.of(self.clicks, self.impressions)

    @property
    def cart_rate(self) -> Rate:
        return Rate.of(self.carts, self.impressions)

    @property
    def purchase_rate(self) -> Rate:
        return Rate.of(self.purchases, self.impressions)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ctr": asdict(self.ctr), "cart_rate": asdict(self.cart_rate),
                               "purchase_rate": asdict(self.purchase_rate)}


def outcomes(impressions: Any, events: Any) -> tuple[list[Line], dict[str, int]]:
    """Per source, model, strategy, variant and hour, and how the events pointing at a list fared
    (``pointing``, ``attributed``: on a product of that list, ``unknown_list``: no such impression read)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("impressions", impressions)
        con.register("events", events)
        lines = [Line(*row) for row in con.execute(OUTCOMES).fetchall()]
        pointing, attributed, unknown = con.execute(POINTED).fetchone() or (0, 0, 0)
    finally:
        con.close()
    return sorted(lines, key=lambda x: (x.source, x.model_version, x.strategy, x.variant, x.hour)), {
        "pointing": pointing, "attributed": attributed, "unknown_list": unknown}


def per_list(impressions: Any, events: Any, columns: str) -> list[tuple[Any, ...]]:
    """``columns`` of each impression (alias ``i``) and whether it earned a click, in DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("impressions", impressions)
        con.register("events", events)
        return con.execute(EARNED + f"SELECT {columns}, e.clicked IS NOT NULL FROM impressions i "  # noqa: S608 (code's columns)
                           "LEFT JOIN earned e ON e.recommendation_id = i.recommendation_id").fetchall()
    finally:
        con.close()


def overall(lines: list[Line]) -> list[Line]:
    """The hourly lines summed over their hours."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for x in lines:
        total = groups.setdefault((x.source, x.model_version, x.strategy, x.variant), [0, 0, 0, 0])
        for i, v in enumerate((x.impressions, x.clicks, x.carts, x.purchases)):
            total[i] += v
    return [Line(*key, "", *counts) for key, counts in sorted(groups.items())]
