"""Simulated shoppers: user-activity events from the source database's real customers and
products, onto the stream.

Most events come from known customers (their number, city, country and credit limit); a share
from visitors the shop does not know (no number; features drawn from the customers'). Each
event belongs to a session (its partition key) and carries the session's browse history so
far: a session starts with one product and grows by one per event, products drawn without
replacement by what that shopper is likely to look at — the generator's choice model, walked
as its shoppers walk (what they just looked at leads to the next: ``source.sequences``), where
the shop is synthetic (its sidecar says so), else the products' popularity. Some browsed
products go into the cart.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select

from recpipe.adapters.base import SourceDatabase, Stream
from recpipe.contracts.events import BrowsedProduct, Event, parse_event
from recpipe.contracts.limits import KINESIS_PUT_MAX_BYTES, KINESIS_PUT_MAX_RECORDS
from recpipe.contracts.source import table
from recpipe.errors import InputError
from recpipe.progress import SILENT, Progress

ACTIVE_SESSIONS = 200
NEW_SESSION = 0.3  # chance that an event starts a new session
MAX_HISTORY = 12
IN_CART = 0.3
_REPLAYED = uuid.UUID("3b0f4c7e-2d6a-4f1e-9a43-6c2b8e5d7f90")  # names replayed events that came without an id


@dataclass
class ProduceResult:
    stream: str
    events: int
    sessions: int  # sessions started by this run
    seconds: float
    preferences: str  # "choice model" (a synthetic shop), "popularity", or "closed loop (…)"
    arms: dict[str, Any] | None = None  # a closed loop's: what each arm's lists earned

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self) | {"events_per_second": round(self.rate, 1)}
        if self.arms is None:
            del doc["arms"]
        return doc


class Shoppers:
    """Who shops and what they look at; ``next_events(n)`` draws the next n events."""

    def __init__(self, customers: dict[str, np.ndarray], products: list[str], popularity: np.ndarray,
                 choice: Any = None, rows: dict[int, int] | None = None, *, unknown: float = 0.15,
                 seed: int = 0) -> None:
        if not len(customers["number"]) or not products:
            raise InputError("the source has no customers or no products to simulate shoppers with",
                             hint="fill it first: `recpipe source init`")
        self.customers, self.products = customers, products
        self.log_pop = np.log(popularity + 1.0)
        self.choice, self.rows = choice, rows or {}
        self.unknown = unknown
        self.rng = np.random.default_rng(seed)
        self.sessions: list[dict[str, Any]] = []
        self.started = 0
        # session ids differ between runs (the choices stay seeded): a second run with the same seed
        # is new sessions, not the first run's again (events are kept one per session, product and
        # kind, and the session store would carry the first run's products over)
        self.run_id = uuid.uuid4().hex[:6]

    @classmethod
    def from_source(cls, db: SourceDatabase, generator: dict[str, Any] | None = None, **kwargs: Any) -> Shoppers:
        c, p, d = table("customers"), table("products"), table("orderdetails")
        with db.engine().connect() as conn:
            rows = conn.execute(select(c.c.customerNumber, c.c.city, c.c.country, c.c.creditLimit)
                                .order_by(c.c.customerNumber)).all()
            products = [r[0] for r in conn.execute(select(p.c.productCode).order_by(p.c.productCode))]
            bought: dict[str, int] = dict(conn.execute(select(d.c.productCode, func.count()).group_by(d.c.productCode)).all())
        customers: dict[str, Any] = {"number": np.array([r[0] for r in rows], np.int64), "city": [r[1] for r in rows],
                     "country": [r[2] for r in rows],
                     "credit": [None if r[3] is None else float(r[3]) for r in rows]}
        popularity = np.array([bought.get(code, 0) for code in products], np.float64)
        choice, index = None, None
        from recpipe.source.generate import recorded_choice_model

        truth = recorded_choice_model(generator)
        if truth is not None:
            numbers, codes, model = truth
            position = {code: i for i, code in enumerate(codes)}
            if set(position) == set(products):  # the same shop: its choice model, in this product order
                order = np.array([position[code] for code in products])
                walk = model.sequence
                if walk is not None:  # the walk's product rows, renumbered to this order
                    at = np.argsort(order)
                    walk = replace(walk, line=walk.line[order], follow=at[walk.follow[order]])
                model = replace(model, item=model.item[order], sellable=model.sellable[order], sequence=walk)
                choice, index = model, {int(n): i for i, n in enumerate(numbers)}
        return cls(customers, products, popularity, choice, index, **kwargs)

    @property
    def preferences(self) -> str:
        return "choice model" if self.choice is not None else "popularity"

    def _logits(self, customer: int | None) -> np.ndarray:
        if customer is not None and self.choice is not None and customer in self.rows:
            return self.choice.logits(np.array([self.rows[customer]]))[0]
        return self.log_pop

    def _first_order(self, logits: np.ndarray) -> list[int]:
        """Without a walk, the session's whole browse order at once (Gumbel top-n over the
        logits); with one, nothing yet: ``_next_click`` draws it a click at a time."""
        if self.choice is not None and self.choice.sequence is not None:
            return []
        return np.argsort(-(logits + self.rng.gumbel(size=len(self.products))))[:MAX_HISTORY].tolist()

    def _next_click(self, session: dict[str, Any]) -> int | None:
        """The product row the session browses next (None: it has browsed all it will). On a
        synthetic shop a walk: drawn by the shopper's logits plus the shop's transitions from
        the one before (``source.sequences``), when it is needed (a session ends after ~3
        clicks on average: drawing its whole walk up front was most of the producer's time)."""
        order: list[int] = session["order"]
        i = len(session["history"])
        if i < len(order):
            return order[i]
        walk = self.choice.sequence if self.choice is not None else None
        if walk is None or i >= min(MAX_HISTORY, len(self.products)):
            return None
        keys = session["logits"] + self.rng.gumbel(size=len(self.products))
        if order:
            keys += walk.after(order[-1])
            keys[order] = -np.inf
        order.append(int(keys.argmax()))
        return order[-1]

    def _new_session(self) -> dict[str, Any]:
        self.started += 1
        i = int(self.rng.integers(len(self.customers["number"])))
        known = self.rng.random() >= self.unknown
        j = i if known else int(self.rng.integers(len(self.customers["number"])))  # a visitor: someone's city
        credit = self.customers["credit"][i] if known else None
        customer = int(self.customers["number"][i]) if known else None
        logits = self._logits(customer)
        return {"id": f"s-{self.run_id}-{self.started:08d}-{int(self.rng.integers(1 << 30)):08x}", "customer": customer,
                "city": self.customers["city"][j], "country": self.customers["country"][j], "credit": credit,
                "logits": logits, "order": self._first_order(logits), "history": []}

    def pick_session(self, new: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
        """The session of the next event: a new one (``new()``, by default ``_new_session``)
        while fewer than ``ACTIVE_SESSIONS`` are open and at ``NEW_SESSION``'s rate after (it
        takes a random one's place), else an open one at random."""
        if len(self.sessions) < ACTIVE_SESSIONS or self.rng.random() < NEW_SESSION:
            session = (new or self._new_session)()
            if len(self.sessions) >= ACTIVE_SESSIONS:
                self.sessions[int(self.rng.integers(len(self.sessions)))] = session
            else:
                self.sessions.append(session)
            return session
        return self.sessions[int(self.rng.integers(len(self.sessions)))]

    def next_events(self, n: int, now: dt.datetime | None = None) -> list[Event]:
        now = now or dt.datetime.now(dt.UTC)
        out = []
        for _ in range(n):
            session = self.pick_session()
            row = self._next_click(session)
            if row is not None:
                code = self.products[row]
                # the simulation's own values, valid by construction: built without pydantic's checks
                # (they were a third of the producer's time; tests validate what it makes)
                session["history"].append(BrowsedProduct.model_construct(
                    product_code=code, quantity=int(self.rng.integers(1, 4)),
                    in_shopping_cart=bool(self.rng.random() < IN_CART)))
            out.append(Event.model_construct(
                event_id=uuid.uuid4().hex, session_id=session["id"], customer_number=session["customer"],
                city=session["city"], country=session["country"], credit_limit=session["credit"], event_time=now,
                browse_history=list(session["history"])))
        return out


class Simulation(Protocol):
    """What ``run`` draws events from: ``Shoppers``, or the closed loop around them."""

    started: int
    preferences: str

    def next_events(self, n: int) -> list[Event]: ...


def run(stream: Stream, shoppers: Simulation, *, rate: float, count: int | None = None,
        duration: float | None = None, progress: Progress = SILENT) -> ProduceResult:
    """Put ``count`` events (or as many as ``duration`` seconds allow) at ``rate`` events/s."""
    if rate <= 0 or (count is None) == (duration is None) or (count or 1) < 1 or (duration or 1) <= 0:
        raise InputError("give a positive rate and exactly one of a positive count or duration",
                         hint="e.g. --rate 1000 --count 5000, or --rate 200 --duration 30")
    batch = max(1, min(KINESIS_PUT_MAX_RECORDS, int(rate / 10) or 1))  # about ten puts a second
    started = time.monotonic()
    sent = 0
    progress.start("events", count)
    sessions_before = shoppers.started
    while (count is None or sent < count) and (duration is None or time.monotonic() - started < duration):
        n = batch if count is None else min(batch, count - sent)
        events = shoppers.next_events(n)
        stream.put([(e.session_id, e.to_bytes()) for e in events])
        sent += n
        progress.advance("events", n)
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    return ProduceResult(stream.url, sent, shoppers.started - sessions_before, round(time.monotonic() - started, 3),
                         shoppers.preferences)


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based
    problem: str


@dataclass(frozen=True)
class ReplayResult:
    stream: str
    source: str  # the file, or "stdin"
    events: int  # put on the stream
    bad: list[BadLine]  # lines that are not events: nothing was put for them
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "source": self.source, "events": self.events,
                "bad_lines": [asdict(b) for b in self.bad], "seconds": self.seconds,
                "events_per_second": round(self.rate, 1)}


def replay(stream: Stream, lines: Iterable[bytes], *, source: str, rate: float | None = None,
           progress: Progress = SILENT) -> ReplayResult:
    """Put the events of NDJSON ``lines`` (the event contract, one per line) on the stream, in
    order, each checked first; a line that is not an event is reported with its number and
    nothing is put for it. An event without an ``event_id`` gets one named by its bytes (the
    same line replayed twice is the same event, kept once downstream). Blank lines are skipped.
    ``rate``: events/s at most (None: at once)."""
    if rate is not None and rate <= 0:
        raise InputError(f"rate {rate}: give a positive number of events per second")
    started = time.monotonic()
    bad: list[BadLine] = []
    batch: list[tuple[str, bytes]] = []
    size = sent = 0
    progress.start("events", None)

    def flush() -> None:
        nonlocal batch, size, sent
        if batch:
            stream.put(batch)
            sent += len(batch)
            progress.advance("events", len(batch))
            batch, size = [], 0
            ahead = sent / rate - (time.monotonic() - started) if rate else 0.0
            if ahead > 0:
                time.sleep(ahead)

    for number, raw in enumerate(lines, start=1):
        data = raw.strip()
        if not data:
            continue
        try:
            event = parse_event(data)
        except InputError as exc:
            bad.append(BadLine(number, exc.message))
            continue
        if event.event_id is None:  # named by its bytes: the same line replayed twice is one event
            event.event_id = uuid.uuid5(_REPLAYED, data.decode()).hex
            data = event.to_bytes()
        record = (event.session_id, data)
        if len(batch) == KINESIS_PUT_MAX_RECORDS or size + len(data) + len(event.session_id) > KINESIS_PUT_MAX_BYTES \
                or (rate and len(batch) >= max(1, int(rate / 10))):
            flush()
        batch.append(record)
        size += len(data) + len(event.session_id)
    flush()
    return ReplayResult(stream.url, source, sent, bad, round(time.monotonic() - started, 3))
