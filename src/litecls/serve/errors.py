"""Every error as JSON ``{"error", "status"}`` with the right status; the service keeps serving."""

from __future__ import annotations

import json

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


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, exc.results), exc.status, headers=exc.headers)

    @app.exception_handler(ModelNotFound)
    async def not_found(_request: Request, exc: ModelNotFound) -> JSONResponse:
        return JSONResponse(error_body(404, str(exc)), 404)

    @app.exception_handler(LabelsError)
    async def bad_labels(_request: Request, exc: LabelsError) -> JSONResponse:
        return JSONResponse(error_body(422, str(exc)), 422)

    @app.exception_handler(ModelFileError)
    async def bad_model(_request: Request, exc: ModelFileError) -> JSONResponse:
        return JSONResponse(error_body(500, f"model cannot be loaded: {exc}"), 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(422, _validation_message(exc)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crash(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}: {exc}"), 500)


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, by Content-Length or while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            body = json.dumps(error_body(413, UploadTooLarge(self.limit).message)).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge(self.limit)
            return message

        await self.app(scope, counting_receive, send)
