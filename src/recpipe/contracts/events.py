"""User-activity events on the stream, and the enriched records the delivery writes.

One event is one JSON object in one stream record; its partition key is the session::

    {"session_id": "a1", "customer_number": 103, "city": "Nantes", "country": "France",
     "credit_limit": 21000.0, "event_time": "2026-11-25T17:00:00Z",
     "browse_history": [{"product_code": "S10_1678", "quantity": 2, "in_shopping_cart": true}]}

``customer_number`` is null for a visitor the shop does not know (their features decide).

Three optional fields close the loop (an event without them is valid, and written as it came):
``event_id`` names the event uniquely (``stream produce`` sets it when absent; the delivery and
the events dataset keep one copy of each); on a browsed product, ``recommendation_id`` names
the list it was picked from and ``purchased`` says it was bought.
The enriched record is the event plus ``recommended_items``, ``similar_items``
(``{"product_code", "similar_items"}``, for the latest browsed product the model knows),
``recommendation_id``, ``model_version`` and ``recommended_at``; each item is ``{"id", "score"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict as ValidatedDict  # pydantic validates these on Python 3.11

from recpipe.contracts.limits import (
    KINESIS_MAX_RECORD_BYTES,
    MAX_CREDIT_LIMIT,
    MAX_CUSTOMER_NUMBER,
    NO_NUL,
)
from recpipe.errors import InputError

ID_MAX = 128  # characters of an event_id or a recommendation_id
KINDS = ("browse", "cart", "purchase")  # what a shopper does with a product, each implying the one before


def _absent(value: object) -> bool:
    """Optional fields added after the seed are left out of the JSON when absent, so that the
    seed's events come out of the stream exactly as they went in."""
    return value is None


class BrowsedProduct(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    product_code: str = Field(min_length=1, max_length=50, pattern=NO_NUL)
    quantity: int = Field(ge=0, le=1_000_000)
    in_shopping_cart: bool
    # the list it was picked from (an enriched record's or a /recommendations answer's id), if any
    recommendation_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX, pattern=NO_NUL,
                                          exclude_if=_absent)
    purchased: bool | None = Field(default=None, exclude_if=_absent)  # bought in this session

    @property
    def kind(self) -> str:
        """What the shopper did with it: ``purchase``, ``cart`` or ``browse`` (the furthest)."""
        return "purchase" if self.purchased else "cart" if self.in_shopping_cart else "browse"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    event_id: str | None = Field(default=None, min_length=1, max_length=ID_MAX, pattern=NO_NUL, exclude_if=_absent)
    session_id: str = Field(min_length=1, max_length=256, pattern=NO_NUL)
    customer_number: int | None = Field(default=None, ge=0, le=MAX_CUSTOMER_NUMBER)
    city: str | None = Field(default=None, max_length=50, pattern=NO_NUL)
    country: str | None = Field(default=None, max_length=50, pattern=NO_NUL)
    credit_limit: float | None = Field(default=None, allow_inf_nan=False, ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT)
    event_time: AwareDatetime = Field(strict=False)  # ISO 8601 text with a time zone
    browse_history: list[BrowsedProduct] = Field(max_length=1000)

    @property
    def cart(self) -> list[str]:
        return [b.product_code for b in self.browse_history if b.in_shopping_cart]

    def features(self) -> dict[str, Any]:
        """What the user tower reads, with the training dataset's names."""
        return {"city": self.city, "country": self.country, "creditLimit": self.credit_limit}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Activity:
    """One product a shopper looked at lately: its code and ``kind`` (``browse`` or ``cart``);
    what the session store keeps and the session encoder reads, oldest first."""

    product_code: str
    kind: str = "browse"

    @classmethod
    def of(cls, event: Event) -> list[Activity]:
        """An event's browse history as recent activity."""
        return cls.of_products(event.browse_history)

    @classmethod
    def of_products(cls, products: list[BrowsedProduct]) -> list[Activity]:
        """Browsed products as recent activity (a bought product counts as carted)."""
        return [cls(b.product_code, "cart" if b.in_shopping_cart or b.purchased else "browse") for b in products]


def parse_event(data: bytes) -> Event:
    """One stream record's bytes as an event; an InputError says what is wrong with it."""
    if len(data) > KINESIS_MAX_RECORD_BYTES:
        raise InputError(f"the record is {len(data):,} bytes, more than a stream record may be "
                         f"({KINESIS_MAX_RECORD_BYTES:,})")
    try:  # the fast path: a valid event, parsed and checked by pydantic in one pass
        return Event.model_validate_json(data)
    except ValidationError:
        pass  # say why below, precisely
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the record is not JSON: {exc}") from None
    except RecursionError:
        raise InputError("the record's JSON nests too deeply to be an event") from None
    except ValueError as exc:  # e.g. a number of more digits than Python converts
        raise InputError(f"the record's JSON cannot be read: {str(exc)[:120]}") from None
    if not isinstance(doc, dict):
        raise InputError(f"the record is a JSON {type(doc).__name__}, not an object")
    try:
        return Event.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg'].lower()}"
                             for e in exc.errors()[:5])
        raise InputError(f"the record is not an event: {problems}") from None


STREAM_K = 10  # items in each list the stream adds to an event
SIMILAR_ROUNDS = 3  # how far back in a browse history to look for a product with an embedding


class Item(TypedDict):
    id: str
    score: float


class SimilarItems(TypedDict):
    product_code: str | None  # the latest browsed product the model knows (None: none of them)
    similar_items: list[Item]


class EnrichedRecord(TypedDict):
    """An event as the delivery writes it: the event's own fields, then what the stream added."""

    event_id: NotRequired[str]
    session_id: str
    customer_number: int | None
    city: str | None
    country: str | None
    credit_limit: float | None
    event_time: str
    browse_history: list[dict[str, Any]]
    recommended_items: list[Item]
    similar_items: SimilarItems
    recommendation_id: str
    model_version: str
    strategy: str
    recommended_at: str
    variant: NotRequired[str]  # the shopper's variant, while an experiment runs


def enriched(event: Event, recommended: list[Item], similar_to: str | None, similar: list[Item], *,
             recommendation_id: str, model_version: str, strategy: str, recommended_at: str,
             variant: str | None = None) -> EnrichedRecord:
    """The one way an enriched record is made, by the in-process and the remote enricher alike.
    ``variant``: the shopper's variant of a running experiment (left out when none runs)."""
    record: EnrichedRecord = {**event.to_json(),  # type: ignore[typeddict-item]
                              "recommended_items": recommended,
                              "similar_items": {"product_code": similar_to, "similar_items": similar},
                              "recommendation_id": recommendation_id, "model_version": model_version,
                              "strategy": strategy, "recommended_at": recommended_at}
    if variant is not None:
        record["variant"] = variant
    return record


class _ShownItem(ValidatedDict):  # TypedDicts: 1.5x faster to validate than nested models
    id: str
    score: float


class _Similar(ValidatedDict):
    product_code: str | None
    similar_items: list[_ShownItem]


class DeliveredRecord(Event):
    """An ``EnrichedRecord`` line, validated in one pass (the events dataset's fast path: a
    line it refuses is looked at field by field to say why)."""

    recommended_items: list[_ShownItem]
    similar_items: _Similar
    recommendation_id: str = Field(min_length=1, pattern=NO_NUL)
    model_version: str = Field(min_length=1, pattern=NO_NUL)
    strategy: str = Field(min_length=1, pattern=NO_NUL)
    recommended_at: str
    variant: str | None = Field(default=None, min_length=1, pattern=NO_NUL)
