"""The rich endpoints: a customer's or a session's recommendations, with the business rules
as parameters and what the shopper is doing now (``recent``, or the session store's)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recpipe.api.deps import ServiceDep, responses
from recpipe.api.routes.common import Code, answer
from recpipe.api.schema import Recommendations, SessionRecommendations
from recpipe.contracts.events import Activity
from recpipe.contracts.limits import (
    CODE_LENGTH,
    MAX_CREDIT_LIMIT,
    MAX_CUSTOMER_NUMBER,
    MAX_K,
    MAX_LISTED,
    MAX_RECENT,
    NO_NUL,
)
from recpipe.inference.recommend import Rules

router = APIRouter(tags=["recommendations"])


class RecommendationQuery(BaseModel):
    """The rich endpoint's query parameters: the business rules (one model, validated at once)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("product_line", mode="after")
    @classmethod
    def _empty_is_any(cls, line: str | None) -> str | None:
        return line or None  # ?product_line= (as a form with nothing chosen sends it) means any line

    k: int = Field(10, ge=1, le=MAX_K, description="How many items.")
    exclude: list[Code] = Field([], max_length=MAX_LISTED, description="Product codes to leave out.")
    cart: list[Code] = Field([], max_length=MAX_LISTED, description="Products in the cart (left out).")
    exclude_bought: bool = Field(True, description="Leave out what the customer already bought.")
    recent: str | None = Field(None, max_length=MAX_RECENT * (CODE_LENGTH + 1), pattern=NO_NUL,
                               description="What the shopper looked at lately, oldest first: CODE,CODE,… "
                                           "(a code also in `cart` counts as carted). Absent: the session "
                                           "store's. Empty: none.")
    exclude_browsed: bool = Field(True, description="Leave out what the shopper looked at lately.")
    in_stock: bool = Field(True, description="Only items in stock.")
    product_line: str | None = Field(None, max_length=50, pattern=NO_NUL,
                                     description="Only this product line (empty: any).")
    max_per_line: int | None = Field(None, ge=1, le=MAX_K, description="At most this many per product line.")
    strategy: Literal["auto", "popular"] = Field(
        "auto", description="auto: the best the model can do; popular: the most bought products whatever the "
                            "model knows (a control list, to compare the model with).")
    session_id: str | None = Field(None, min_length=1, max_length=256, pattern=NO_NUL,
                                   description="The session the list is shown in: logged with it, so that its "
                                               "clicks can be counted per session.")
    city: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    country: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    credit_limit: float | None = Field(None, allow_inf_nan=False, ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT,
                                       description="For a customer without a stored embedding.")

    @field_validator("recent", mode="after")
    @classmethod
    def _codes(cls, recent: str | None) -> str | None:
        if recent is None:
            return None
        codes = [c.strip() for c in recent.split(",") if c.strip()]
        if len(codes) > MAX_RECENT:
            raise ValueError(f"at most {MAX_RECENT} products (got {len(codes)}); send the latest ones")
        long = [c for c in codes if len(c) > CODE_LENGTH]
        if long:
            raise ValueError(f"a product code has at most {CODE_LENGTH} characters ({long[0][:40]!r}…)")
        return ",".join(codes)

    def rules(self) -> Rules:
        return Rules(k=self.k, exclude=tuple(self.exclude), cart=tuple(self.cart), exclude_bought=self.exclude_bought,
                     exclude_browsed=self.exclude_browsed, in_stock=self.in_stock, product_line=self.product_line,
                     max_per_line=self.max_per_line, popular=self.strategy == "popular")

    def activity(self) -> list[Activity] | None:
        """The ``recent`` products given (None: ask the session store)."""
        if self.recent is None:
            return None
        cart = set(self.cart)
        return [Activity(c, "cart" if c in cart else "browse") for c in self.recent.split(",") if c]

    def features(self) -> dict[str, Any] | None:
        """The features given for a customer without a stored embedding (None: none given)."""
        given = {"city": self.city, "country": self.country, "creditLimit": self.credit_limit}
        return given if any(v is not None for v in given.values()) else None


@router.get("/recommendations/{customer_number}", response_model=Recommendations, responses=responses(404, 503))
async def recommendations(customer_number: Annotated[int, Path(ge=0, le=MAX_CUSTOMER_NUMBER,
                                                               description="A customerNumber.")],
                          ask: Annotated[RecommendationQuery, Query()], svc: ServiceDep) -> Response:
    """Recommendations for a customer, with the business rules as parameters; what they did
    lately (`recent`, else the session store's) moves them toward it (strategy `session`)."""
    rec = await svc.run(svc.for_customer, customer_number, ask.features(), ask.rules(), ask.activity(),
                        ask.session_id)
    return answer({"customer_number": customer_number, **rec.to_json()}, rec)


@router.get("/sessions/{session_id:path}/recommendations", response_model=SessionRecommendations,
            responses=responses(404, 503))
async def session_recommendations(session_id: Annotated[str, Path(min_length=1, max_length=256, pattern=NO_NUL,
                                                                  description="A session id (the stream's "
                                                                              "partition key).")],
                                  ask: Annotated[RecommendationQuery, Query()], svc: ServiceDep) -> Response:
    """Recommendations for a session, a visitor the shop may not know: from what the session
    did lately (`recent`, else the session store's) and, if the store saw a customer in it,
    who they are; a session with nothing yet gets the popular items."""
    rec, customer = await svc.run(svc.for_session, session_id, ask.features(), ask.rules(), ask.activity())
    return answer({"session_id": session_id, "customer_number": customer, **rec.to_json()}, rec)
