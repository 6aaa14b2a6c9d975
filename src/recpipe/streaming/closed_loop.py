"""Shoppers that react: a closed-loop simulation of a storefront (``stream produce --closed-loop``).

Each click of a simulated session starts with the storefront asking the service for the
session's recommendations (in process through the service's own code, or over HTTP), as a
shop page would. The shopper then picks the next product by the shop generator's ground truth:
their taste (``source.choices``) plus the walk from the product they just looked at
(``source.sequences``), with Gumbel noise, where a product shown in the list is more likely
to be picked the higher it is shown (a position-based examination model,
``log(1 + BOOST / log2(position + 1))``). A pick from the list is a click: its event names the
list's ``recommendation_id``. Whether the product goes into the cart, and is bought, follows
how much this shopper likes it.

Half the sessions (``popular_share``) are shown the most bought products instead of the
model's (``strategy=popular``), so the two can be compared on comparable shoppers. While an
experiment runs (``recpipe experiments``) the service assigns the shoppers instead: give a
share of 0, and the lists are counted per variant. For every
list shown the simulation also asks what a perfect recommender would have earned: the top
``k`` of the shopper's own ground truth, with the same noise (common random numbers), never
shown. That is the ceiling of the online figures.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recpipe.contracts.events import Activity, BrowsedProduct, Event
from recpipe.contracts.limits import MAX_RECENT
from recpipe.errors import InputError, ServiceError
from recpipe.streaming.produce import MAX_HISTORY, Shoppers

BOOST = 3.0  # how much being shown first lifts a product's odds (e^log(1+3) = 4x), less further down
CART_AT = 0.5  # a product liked this many standard deviations above the shopper's mean is carted half the time
BUY_SHARE = 0.5  # of carted products, at most this share is bought


@dataclass(frozen=True)
class Shown:
    recommendation_id: str
    strategy: str
    items: list[str]
    variant: str | None = None  # the shopper's variant, while an experiment runs


class Storefront(Protocol):
    """Where the shop page gets a session's list (the service, in process or over HTTP)."""

    def show(self, session_id: str, customer: int | None, features: dict[str, Any], recent: list[Activity],
             *, popular: bool, k: int) -> Shown: ...


class HttpStorefront:
    """``GET /recommendations/{customer}`` (or ``/sessions/{id}/recommendations`` for a
    visitor) of a running ``recpipe serve``, with the session's products as ``recent``."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def show(self, session_id: str, customer: int | None, features: dict[str, Any], recent: list[Activity],
             *, popular: bool, k: int) -> Shown:
        query: dict[str, Any] = {"k": k, "recent": ",".join(a.product_code for a in recent[-MAX_RECENT:]),
                                 "cart": [a.product_code for a in recent if a.kind == "cart"]}
        query |= {"strategy": "popular"} if popular else {}
        query |= {"session_id": session_id} if customer is not None else {}
        if customer is None:
            query |= {name: value for name, value in (("city", features.get("city")), ("country", features.get("country")),
                                                      ("credit_limit", features.get("creditLimit"))) if value is not None}
        path = f"/recommendations/{customer}" if customer is not None else \
            f"/sessions/{urllib.parse.quote(session_id, safe='')}/recommendations"
        url = f"{self.url}{path}?{urllib.parse.urlencode(query, doseq=True)}"
        request = urllib.request.Request(url, headers=self._auth)  # noqa: S310 (http(s) only)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 (http(s) only)
                doc = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise ServiceError(f"the inference service {self.url} answered {exc.code} to GET {path}: {detail}",
                               hint="is a model loaded (`recpipe vectors load`)?") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ServiceError(f"cannot reach the inference service {self.url}: {exc}",
                               hint="start it (`recpipe serve`) or leave out --service-url to ask it in process") from exc
        return Shown(doc["recommendation_id"], doc["strategy"], [i["id"] for i in doc["items"]], doc.get("variant"))


@dataclass
class Arm:
    """What one arm's lists earned, counted by the simulation itself (``recpipe report`` counts
    the same from the lake)."""

    impressions: int = 0
    clicks: int = 0
    carts: int = 0
    purchases: int = 0
    ceiling_clicks: int = 0  # what the ground truth's own top k would have earned, never shown
    strategies: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from recpipe.report.attribution import Rate

        ctr, ceiling = Rate.of(self.clicks, self.impressions), Rate.of(self.ceiling_clicks, self.impressions)
        return {"impressions": self.impressions, "clicks": self.clicks, "carts": self.carts,
                "purchases": self.purchases, "ctr": round(ctr.rate, 4), "ctr_low": round(ctr.low, 4),
                "ctr_high": round(ctr.high, 4), "ceiling_ctr": round(ceiling.rate, 4),
                "strategies": dict(sorted(self.strategies.items()))}


class ClosedLoop:
    """``next_events(n)`` like ``Shoppers``', each click chosen after seeing the storefront's list."""

    def __init__(self, shoppers: Shoppers, storefront: Storefront, *, k: int = 10, popular_share: float = 0.5,
                 boost: float = BOOST) -> None:
        if shoppers.choice is None:
            raise InputError("the closed loop needs a synthetic shop's ground truth (its generator sidecar)",
                             hint="make the shop with `recpipe source init`, or produce without --closed-loop")
        if not 0 <= popular_share <= 1:
            raise InputError(f"--popular-share {popular_share}: give a share between 0 and 1")
        self.shoppers, self.storefront, self.k, self.popular_share = shoppers, storefront, k, popular_share
        self.truth = shoppers.choice  # the generator's choice model
        self.rng = shoppers.rng
        self.row = {code: i for i, code in enumerate(shoppers.products)}
        self.lift = np.log1p(boost / np.log2(np.arange(k) + 2.0))  # by position, from the top
        self.arms: dict[str, Arm] = {}  # model | popular, or the experiment's variants

    @property
    def started(self) -> int:
        return self.shoppers.started

    @property
    def preferences(self) -> str:
        return f"closed loop ({self.shoppers.preferences})"

    def next_events(self, n: int, now: dt.datetime | None = None) -> list[Event]:
        out = []
        for _ in range(n):
            session = self._session()
            out.append(self._click(session, now or dt.datetime.now(dt.UTC)))
        return out

    def _session(self) -> dict[str, Any]:
        """The producer's choice of session; one that has seen all it will gives its place to a new shopper."""
        session = self.shoppers.pick_session(self._new)
        if len(session["history"]) >= min(MAX_HISTORY, len(self.shoppers.products)):
            pool = self.shoppers.sessions
            pool[next(i for i, s in enumerate(pool) if s is session)] = session = self._new()
        return session

    def _new(self) -> dict[str, Any]:
        session = self.shoppers._new_session()
        logits, sellable = session["logits"], self.truth.sellable
        session["mean"], session["sd"] = float(logits[sellable].mean()), float(logits[sellable].std()) or 1.0
        session["arm"] = "popular" if self.rng.random() < self.popular_share else "model"
        return session

    def _click(self, session: dict[str, Any], now: dt.datetime) -> Event:
        history: list[BrowsedProduct] = session["history"]
        recent = Activity.of_products(history)
        features = {"city": session["city"], "country": session["country"], "creditLimit": session["credit"]}
        shown = self.storefront.show(session["id"], session["customer"], features, recent,
                                     popular=session["arm"] == "popular", k=self.k)
        arm = self.arms.setdefault(arm_of(shown.variant, session["arm"]), Arm())
        arm.impressions += 1
        arm.strategies[shown.strategy] = arm.strategies.get(shown.strategy, 0) + 1
        taste = session["logits"].copy()
        if self.truth.sequence is not None and history:  # the walk from the product just looked at
            taste += self.truth.sequence.after(self.row[history[-1].product_code])
        browsed = [self.row[b.product_code] for b in history]
        taste[browsed] = -np.inf
        keys = taste + self.rng.gumbel(size=len(taste))
        rows = np.array([self.row[c] for c in shown.items[:self.k] if c in self.row], dtype=np.int64)
        pick = self._pick(keys, rows)
        ideal = np.argsort(-taste)[:self.k]  # the ceiling: the ground truth's own list, same noise
        arm.ceiling_clicks += int(np.isin(self._pick(keys, ideal), ideal))
        clicked = bool(np.isin(pick, rows))
        z = (session["logits"][pick] - session["mean"]) / session["sd"]
        carted = bool(self.rng.random() < 1.0 / (1.0 + np.exp(-(z - CART_AT) * 2.0)))
        bought = carted and bool(self.rng.random() < BUY_SHARE / (1.0 + np.exp(-(z - CART_AT))))
        if clicked:
            arm.clicks += 1
            arm.carts += carted
            arm.purchases += bought
        history.append(BrowsedProduct.model_construct(
            product_code=self.shoppers.products[pick], quantity=int(self.rng.integers(1, 4)), in_shopping_cart=carted,
            recommendation_id=shown.recommendation_id if clicked else None, purchased=True if bought else None))
        return Event.model_construct(
            event_id=uuid.uuid4().hex, session_id=session["id"], customer_number=session["customer"],
            city=session["city"], country=session["country"], credit_limit=session["credit"], event_time=now,
            browse_history=list(history))

    def _pick(self, keys: np.ndarray, shown: np.ndarray) -> int:
        lifted = keys.copy()
        lifted[shown] += self.lift[:len(shown)]
        return int(lifted.argmax())

    def summary(self) -> dict[str, Any]:
        return {name: arm.to_json() for name, arm in self.arms.items() if arm.impressions}


def arm_of(variant: str | None, arm: str) -> str:
    """The arm a list is counted in: the experiment's variant, else the loop's own split."""
    return f"variant {variant}" if variant else arm


def lists_by_arm(lines: Any) -> dict[str, tuple[int, int]]:
    """A report's service lines (``report.attribution.Line``) by the closed loop's arm, as
    (lists shown, clicks): an experiment's variants, else ``popular`` (the control) and
    ``model`` (every other strategy)."""
    out: dict[str, tuple[int, int]] = {}
    for x in lines:
        if x.source == "service":
            arm = arm_of(x.variant, "popular" if x.strategy == "popular" else "model")
            shown, clicks = out.get(arm, (0, 0))
            out[arm] = (shown + x.impressions, clicks + x.clicks)
    return out
