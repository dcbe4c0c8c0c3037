"""Every error as JSON ``{"error", "status"}`` with the right status; the service keeps serving."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from litecls.errors import LabelsError, ModelFileError
from litecls.serve.registry import ModelNotFound


class ApiError(Exception):
    """An error answered as ``{"error": message, "status": status}`` (plus ``results`` when given)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 results: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.results = results


class UploadTooLarge(ApiError):
    """The request body is over ``--max-upload-mb``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"upload over the limit of {limit / 1024 / 1024:g} MB (--max-upload-mb)")


def error_body(status: int, message: str, results: list[dict] | None = None) -> dict:
    """The JSON of an error response."""
    body: dict = {"error": message, "status": status}
    if results is not None:
        body["results"] = results
    return body


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "invalid request: " + "; ".join(parts)


def error_response(exc: Exception) -> JSONResponse:
    """The JSON answer to an exception raised while handling a request (one mapping for every route).

    Args:
        exc: what a route raised.
    Returns:
        ``{"error", "status"}`` with the status its type calls for: :class:`ApiError` its own (with
        its headers and ``results``), an unknown model 404, bad labels 422, a model that cannot be
        loaded 500, invalid request fields 422, Starlette's HTTP errors theirs, anything else 500.
    """
    if isinstance(exc, ApiError):
        return JSONResponse(error_body(exc.status, exc.message, exc.results), exc.status, headers=exc.headers)
    if isinstance(exc, ModelNotFound):
        return JSONResponse(error_body(404, str(exc)), 404)
    if isinstance(exc, LabelsError):
        return JSONResponse(error_body(422, str(exc)), 422)
    if isinstance(exc, ModelFileError):
        return JSONResponse(error_body(500, f"model cannot be loaded: {exc}"), 500)
    if isinstance(exc, RequestValidationError):
        return JSONResponse(error_body(422, _validation_message(exc)), 422)
    if isinstance(exc, StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code,
                            headers=getattr(exc, "headers", None))
    return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}: {exc}"), 500)


#: What routes raise on purpose; anything else is a crash, answered 500 and logged by the server.
EXPECTED = (ApiError, ModelNotFound, LabelsError, ModelFileError, RequestValidationError,
            StarletteHTTPException)


def install_handlers(app: FastAPI) -> None:
    """Register :func:`error_response` as ``app``'s handler of every exception type."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    for kind in (*EXPECTED, Exception):
        app.add_exception_handler(kind, handle)


def too_large_response(limit: int) -> JSONResponse:
    """413 for a body declared over ``limit`` bytes, closing the connection (the body is not read)."""
    return JSONResponse(error_body(413, UploadTooLarge(limit).message), 413, headers={"connection": "close"})


def declared_too_large(scope: Scope, limit: int) -> bool:
    """True when the request's ``Content-Length`` says more than ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) > limit
    return False


def limited(receive: Receive, limit: int) -> Receive:
    """``receive`` raising :class:`UploadTooLarge` once the body read so far is over ``limit`` bytes."""
    seen = 0

    async def counting_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise UploadTooLarge(limit)
        return message

    return counting_receive


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, by Content-Length or while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope, self.limit):
            await too_large_response(self.limit)(scope, receive, send)
            return
        await self.app(scope, limited(receive, self.limit), send)
