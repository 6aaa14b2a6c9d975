"""What several routers share: a product code's shape and the answer that carries a
recommendation's id and model version in its headers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import Field

from recpipe.contracts.limits import CODE_LENGTH, MAX_K, NO_NUL
from recpipe.inference.recommend import Recommendation

# A product code (classicmodels: VARCHAR(15)); PostgreSQL text cannot hold NUL. Lists stay
# short enough that a URL carrying them passes the HTTP server's request-line limit.
Code = Annotated[str, Field(min_length=1, max_length=CODE_LENGTH, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")]


def answer(body: Any, rec: Recommendation) -> JSONResponse:
    """Built here, already valid: returning a Response skips FastAPI's re-validation of the
    response model (a sixth of a request's CPU); the model still documents it."""
    headers = {"X-Recommendation-Id": rec.recommendation_id, "X-Model-Version": rec.model_version}
    if rec.variant is not None:
        headers["X-Variant"] = rec.variant
    return JSONResponse(body, headers=headers)
