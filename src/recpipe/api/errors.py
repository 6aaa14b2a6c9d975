"""One table from recpipe's errors to HTTP statuses, and the handlers that answer every error
in the one shape the OpenAPI document declares (``{"error", "hint", "problems"}``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recpipe.api.schema import public, validation_error
from recpipe.errors import InputError, NotFound, NotPublished, RecpipeError, ServiceError

# the first class an error is an instance of gives its status (NotFound and NotPublished are
# InputErrors: they come first); anything else of recpipe's is a 500
STATUS: tuple[tuple[type[RecpipeError], int], ...] = (
    (NotFound, 404), (NotPublished, 503), (ServiceError, 503), (InputError, 422))
RETRY = {503: {"Retry-After": "1"}}
UNREADABLE_BODY = ("the body is not JSON this service reads: it must be UTF-8, nested at most a few hundred "
                   "levels deep, with numbers of at most 4,300 digits")


def status_of(exc: RecpipeError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


def recpipe_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RecpipeError)  # noqa: S101 (registered for RecpipeError only)
    code = status_of(exc)
    if code == 503:  # a backend's message may name this machine's paths: not in an answer
        return JSONResponse({"error": public(exc.message), "hint": public(exc.hint) or "retry shortly"},
                            status_code=code, headers=RETRY[code])
    return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=code)


def http_error(request: Request, exc: Exception) -> JSONResponse:
    """404 (no such path) and 405 (wrong method) in the same shape as every other error; a body
    FastAPI could not read at all (400) is a 422 that says why."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 400:
        return JSONResponse(validation_error([{"loc": ("body",), "msg": UNREADABLE_BODY}]), status_code=422)
    hint = "see /docs for the endpoints" if exc.status_code in (404, 405) else None
    return JSONResponse({"error": str(exc.detail), "hint": hint}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return JSONResponse(validation_error(exc.errors()), status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RecpipeError, recpipe_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
