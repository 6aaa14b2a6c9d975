"""The rich endpoint: a customer's recommendations, with the business rules as parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recpipe.api.deps import ServiceDep, responses
from recpipe.api.routes.common import MAX_LISTED, Code, answer
from recpipe.api.schema import Recommendations
from recpipe.contracts.limits import MAX_CREDIT_LIMIT, MAX_CUSTOMER_NUMBER, MAX_K, NO_NUL
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
    in_stock: bool = Field(True, description="Only items in stock.")
    product_line: str | None = Field(None, max_length=50, pattern=NO_NUL,
                                     description="Only this product line (empty: any).")
    max_per_line: int | None = Field(None, ge=1, le=MAX_K, description="At most this many per product line.")
    city: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    country: str | None = Field(None, max_length=50, description="For a customer without a stored embedding.")
    credit_limit: float | None = Field(None, allow_inf_nan=False, ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT,
                                       description="For a customer without a stored embedding.")

    def rules(self) -> Rules:
        return Rules(k=self.k, exclude=tuple(self.exclude), cart=tuple(self.cart), exclude_bought=self.exclude_bought,
                     in_stock=self.in_stock, product_line=self.product_line, max_per_line=self.max_per_line)

    def features(self) -> dict[str, Any] | None:
        """The features given for a customer without a stored embedding (None: none given)."""
        given = {"city": self.city, "country": self.country, "creditLimit": self.credit_limit}
        return given if any(v is not None for v in given.values()) else None


@router.get("/recommendations/{customer_number}", response_model=Recommendations, responses=responses(404, 503))
async def recommendations(customer_number: Annotated[int, Path(ge=0, le=MAX_CUSTOMER_NUMBER,
                                                               description="A customerNumber.")],
                          ask: Annotated[RecommendationQuery, Query()], svc: ServiceDep) -> Response:
    """Recommendations for a customer, with the business rules as parameters."""
    rec = await svc.run(svc.for_customer, customer_number, ask.features(), ask.rules())
    return answer({"customer_number": customer_number, **rec.to_json()}, rec)
