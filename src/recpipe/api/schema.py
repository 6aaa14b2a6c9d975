"""What the service answers, as the OpenAPI document declares it: the bodies of every status a
route can give, and the checks that keep requests strict (no unknown query parameter, a JSON
error that says where)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

_PATH = re.compile(r"(?:(?<=[\s'\"(=])|^)(?:pgserver://)?/[^\s'\")]*")


def public(text: str | None) -> str | None:
    """An error's text as the service may answer it: the machine's paths (a data directory, a
    socket, the command that failed) left out; the CLI still prints them."""
    return None if text is None else _PATH.sub("…", text)


class Problem(BaseModel):
    where: str = Field(description="The part of the request, e.g. query.k or body.0.creditlimit.")
    problem: str


class ErrorBody(BaseModel):
    """Every error has this shape."""

    error: str = Field(description="What went wrong, in one line.")
    hint: str | None = Field(None, description="How to fix it.")
    problems: list[Problem] | None = Field(None, description="Every invalid part (422 only).")


class Item(BaseModel):
    id: str
    score: float = Field(description="Cosine similarity (or popularity, 0–1, for the popular strategy).")
    product_line: str | None


STRATEGIES = "session | stored | features | popular"


class Recommendations(BaseModel):
    customer_number: int
    recommendation_id: str
    model_version: str
    strategy: str = Field(description=STRATEGIES)
    variant: str | None = Field(None, description="The shopper's variant of the running experiment "
                                "(`recpipe experiments`); null when none runs.")
    items: list[Item]


class SessionRecommendations(BaseModel):
    session_id: str
    customer_number: int | None = Field(description="The customer the session store saw in it (None: a visitor).")
    recommendation_id: str
    model_version: str
    strategy: str = Field(description=STRATEGIES)
    variant: str | None = Field(None, description="The shopper's variant of the running experiment "
                                "(`recpipe experiments`); null when none runs.")
    items: list[Item]


class Ready(BaseModel):
    ready: bool
    model_version: str | None = Field(None, description="The model served: the one whose embeddings are loaded.")
    published_model_version: str | None = Field(None, description="The artifacts' latest model (None: unreadable).")
    waiting: str | None = Field(None, description="Set when a newer model waits for `recpipe vectors load`.")
    error: str | None = Field(None, description="Why the service is not ready.")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERRORS: dict[int, dict[str, Any]] = {
    401: _error("No or wrong API key (only when the service runs with RECPIPE_API_KEY)"),
    404: _error("Unknown id"),
    413: _error("Request body over 1,000,000 bytes"),
    422: _error("Invalid request: every problem is listed"),
    503: _error("The vector database is unavailable or nothing is loaded yet: retry after Retry-After seconds"),
}


def validation_error(errors: Sequence[Any]) -> dict[str, Any]:
    """FastAPI's validation errors as an ``ErrorBody``; a body that is not JSON says where it breaks."""
    problems = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            position = f" (character {loc[1]})" if len(loc) > 1 else ""
            problems.append({"where": "body", "problem": f"not valid JSON: {(e.get('ctx') or {}).get('error', '')}"
                                                         f"{position}"})
            continue
        if e.get("type") == "extra_forbidden" and loc[:1] == ["body"]:  # only users are objects
            problems.append({"where": ".".join(loc), "problem": "unknown field: a user has city, country and "
                                                                "creditlimit (or creditLimit)"})
            continue
        problems.append({"where": ".".join(loc), "problem": str(e.get("msg", ""))})
    first = problems[0] if problems else {"where": "request", "problem": "invalid"}
    return {"error": f"invalid request: {first['where']}: {first['problem']}", "hint": None, "problems": problems}


def _query_names(route: Any) -> frozenset[str]:
    names: set[str] = set()
    for param in route.dependant.query_params:
        kind = param.field_info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= {f.alias or name for name, f in kind.model_fields.items()}
        else:
            names.add(param.alias)
    return frozenset(names)




async def known_query_only(request: Request) -> None:
    """A misspelt parameter is a 422 naming the known ones, not silently ignored."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    known = getattr(route, "_recpipe_query_names", None)
    if known is None:  # worked out once per route and kept on it (routes are not hashable)
        known = _query_names(route)
        route._recpipe_query_names = known
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        what = f"known: {', '.join(sorted(known))}" if known else "this endpoint takes none"
        raise RequestValidationError([{"loc": ("query", unknown[0]), "type": "extra_forbidden",
                                       "msg": f"unknown query parameter ({what})"}])
