"""The classify routes answered by a pure-ASGI middleware, ahead of FastAPI's routing.

A camera frame costs the interpreter a few milliseconds; per request FastAPI adds two middlewares
of the service's own (metrics, body limit), its exception and exit-stack middlewares, routing
through every route, dependency solving and the exception handlers' wrapping, all on the one
event-loop thread the requests share. :class:`ClassifyFastPath`, the outermost of the app's own
middlewares, answers ``POST /v1/classify`` and ``POST /v1/models/{model}:classify`` itself, doing
what those layers do for these routes (body limit, API key, the same JSON errors, the same
metrics) around the same :func:`~litecls.serve.routers.classify.classify_request` the FastAPI
routes call. The routes stay declared in FastAPI, so ``/docs`` and ``/openapi.json`` document
them, and any request the fast path does not take (another method, a ``root_path``, a body
declared over the limit) goes through FastAPI as before. A crash propagates to Starlette's
error middleware, which answers 500 (:func:`~litecls.serve.errors.error_response`) and logs it,
as for every route.
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from litecls.serve.dependencies import Service, check_api_key, service_of
from litecls.serve.errors import EXPECTED, declared_too_large, error_response, limited
from litecls.serve.routers.classify import classify_request

#: The classify routes' path templates (the ``route`` label of their metrics).
CLASSIFY = "/v1/classify"
CLASSIFY_WITH = "/v1/models/{model}:classify"
#: ``CLASSIFY_WITH`` as Starlette matches it: ``{model}`` is one path segment (it may hold ``:``).
_CLASSIFY_WITH = re.compile(r"/v1/models/([^/]+):classify")


def classify_route(scope: Scope) -> tuple[str, str | None] | None:
    """The classify route an ASGI call is for, and the model its path names; ``None`` for any other.

    Args:
        scope: the ASGI scope of a call.
    Returns:
        ``(path template, model or None)`` for a ``POST`` to a classify path with no ``root_path``
        (mounted elsewhere, FastAPI's routing decides), else ``None``.
    """
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path = scope["path"]
    if path == CLASSIFY:
        return CLASSIFY, None
    if path.endswith(":classify") and (found := _CLASSIFY_WITH.fullmatch(path)):
        return CLASSIFY_WITH, found.group(1)
    return None


class ClassifyFastPath:
    """Pure ASGI middleware answering the classify routes; any other call goes on to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a classify call directly; hand anything else to the app.

        Args:
            scope, receive, send: the ASGI call (``scope["app"]`` is the service's app).
        """
        route = classify_route(scope)
        service = service_of(scope["app"].state) if route is not None else None
        if service is None or declared_too_large(scope, service.settings.max_upload_bytes):
            # a body declared too large is refused by BodyLimitMiddleware, before routing, as ever
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless answered: a crash is answered 500 by Starlette's error middleware
        try:
            response = await _respond(scope, receive, service, route[1])
            status = response.status_code
            await response(scope, receive, send)
        finally:
            service.metrics.record(route[0], status, time.perf_counter() - started)


async def _respond(scope: Scope, receive: Receive, service: Service, model: str | None) -> Response:
    """What the body limit (counting), the API-key dependency, the route and the error handlers answer."""
    request = Request(scope, limited(receive, service.settings.max_upload_bytes))
    try:
        check_api_key(service.settings.api_key, request.headers)
        if model is None:
            model = request.query_params.get("model")
        return await classify_request(request, model, service)
    except EXPECTED as exc:
        return error_response(exc)
