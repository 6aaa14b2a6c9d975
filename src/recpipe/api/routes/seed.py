"""The seed's three endpoints, which its own transformation Lambda calls unchanged.

Endpoints are coroutines: only the model and database work goes to the service's small
thread pool (see ``recpipe.api.service``), the rest stays on the event loop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from recpipe.api.deps import ServiceDep, responses
from recpipe.api.routes.common import Limit, answer
from recpipe.contracts.artifacts import EMBEDDING_DIM
from recpipe.contracts.limits import CODE_LENGTH, MAX_BATCH, MAX_CREDIT_LIMIT, NO_NUL
from recpipe.contracts.vectors import Scored
from recpipe.inference.recommend import Rules

router = APIRouter(tags=["seed"])


class UserFeatures(BaseModel):
    """One user as the seed's Lambda sends it; ``creditLimit`` (the source's spelling) is read as
    ``creditlimit``; any other key is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")
    city: str | None = Field(None, strict=True, max_length=50)
    country: str | None = Field(None, strict=True, max_length=50)
    creditlimit: float | None = Field(None, allow_inf_nan=False, strict=True,  # a bool is not a number
                                      ge=-MAX_CREDIT_LIMIT, le=MAX_CREDIT_LIMIT,
                                      validation_alias=AliasChoices("creditlimit", "creditLimit"))

    def record(self) -> dict[str, Any]:
        return {"city": self.city, "country": self.country, "creditLimit": self.creditlimit}


Embedding = Annotated[list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
                      Body(min_length=EMBEDDING_DIM, max_length=EMBEDDING_DIM,
                           json_schema_extra={"contains": {"not": {"const": 0}}},
                           description="Not all zero: a direction.")]


@router.post("/user_embeddings", response_model=list[list[float]], responses=responses(503))
async def user_embeddings(users: Annotated[list[UserFeatures], Body(max_length=MAX_BATCH)],
                          svc: ServiceDep) -> Response:
    """Embeddings for a list of ``{city, country, creditlimit}`` (the user tower, in numpy)."""
    model, embeddings = await svc.run(svc.user_embeddings, [u.record() for u in users])
    return JSONResponse(embeddings, headers={"X-Model-Version": model.version})


@router.post("/items_from_user", response_model=list[Scored], responses=responses(503))
async def items_from_user(embedding: Embedding, svc: ServiceDep, limit: Limit = 10) -> Response:
    """Items for one user embedding (one element of /user_embeddings' answer)."""
    rec = await svc.run(svc.items_for_embedding, embedding, limit)
    return answer(rec.items, rec)


@router.get("/items_from_item", response_model=list[Scored], responses=responses(404, 503))
async def items_from_item(item_id: Annotated[str, Query(min_length=1, max_length=CODE_LENGTH, pattern=NO_NUL)],
                          svc: ServiceDep, limit: Limit = 10) -> Response:
    """Items similar to a product (never itself). A catalog product without an embedding yet
    gets popular items of its product line; an unknown id is a 404."""
    rec = await svc.run(svc.similar_to_item, item_id, Rules(k=limit, in_stock=False, exclude_bought=False))
    return answer([{"id": i["id"], "score": i["score"]} for i in rec.items], rec)
