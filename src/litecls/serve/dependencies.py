"""What routes get injected: the settings, the model registry, the metrics, the API-key check."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, NamedTuple

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.datastructures import State

from litecls.serve.errors import ApiError
from litecls.serve.metrics import ServeMetrics
from litecls.serve.registry import ModelRegistry
from litecls.serve.settings import ServeSettings


async def get_settings(request: Request) -> ServeSettings:
    """The service's settings."""
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    """The service's model registry."""
    return request.app.state.registry


async def get_metrics(request: Request) -> ServeMetrics:
    """The service's metrics."""
    return request.app.state.metrics


async def get_pool(request: Request) -> ThreadPoolExecutor:
    """The thread pool that decodes and resizes images."""
    return request.app.state.pool


def key_matches(expected: str | None, given: str | None) -> bool:
    """True when no key is set, or ``given`` equals it (compared in constant time)."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


class ApiKeyCheck(APIKeyHeader):
    """The API-key check as one dependency: ``X-API-Key`` or ``Authorization: Bearer``, when a key is set.

    One node instead of a function depending on the settings and two security schemes: FastAPI
    solves every node of every request (about 20 us each), and this runs on every ``/v1`` call.
    OpenAPI shows it as the ``X-API-Key`` header scheme.
    """

    def __init__(self) -> None:
        super().__init__(name="X-API-Key", scheme_name="APIKeyHeader", auto_error=False,
                         description="the service's --api-key (or send it as Authorization: Bearer KEY)")

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        """Raise 401 unless the request carries the service's key (when one is set).

        Args:
            request: the request (its headers and the service's settings).
        Raises:
            ApiError: 401, the key missing or wrong.
        """
        check_api_key(request.app.state.settings.api_key, request.headers)


def check_api_key(expected: str | None, headers: Mapping[str, str]) -> None:
    """Raise 401 unless ``headers`` carry the key ``expected`` (nothing to check when it is ``None``).

    Args:
        expected: the service's key, or ``None`` when it has none.
        headers: the request's headers (lower-case names): ``X-API-Key``, or ``Authorization: Bearer``.
    Raises:
        ApiError: 401, the key missing or wrong.
    """
    if expected is None:
        return
    given = headers.get("x-api-key")
    if given is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    if not key_matches(expected, given):
        raise ApiError(401, "missing API key (X-API-Key header)" if given is None else "wrong API key",
                       headers={"WWW-Authenticate": "Bearer"})


#: ``Depends(require_api_key)``: 401 unless the ``X-API-Key`` header (or a Bearer token) is the key.
require_api_key = ApiKeyCheck()


class Service(NamedTuple):
    """The settings, registry, metrics and decoding pool together: one dependency for hot routes."""

    settings: ServeSettings
    registry: ModelRegistry
    metrics: ServeMetrics
    pool: ThreadPoolExecutor


def service_of(state: State) -> Service:
    """The settings, registry, metrics and pool an app keeps in ``state``."""
    return Service(state.settings, state.registry, state.metrics, state.pool)


async def get_service(request: Request) -> Service:
    """The service's settings, registry, metrics and pool (FastAPI solves one node, not four)."""
    return service_of(request.app.state)


Settings = Annotated[ServeSettings, Depends(get_settings)]
Registry = Annotated[ModelRegistry, Depends(get_registry)]
Metrics = Annotated[ServeMetrics, Depends(get_metrics)]
Pool = Annotated[ThreadPoolExecutor, Depends(get_pool)]
ServiceState = Annotated[Service, Depends(get_service)]
