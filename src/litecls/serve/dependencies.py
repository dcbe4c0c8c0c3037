"""What routes get injected: the settings, the model registry, the metrics, the API-key check."""

from __future__ import annotations

import hmac
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from litecls.serve.errors import ApiError
from litecls.serve.metrics import ServeMetrics
from litecls.serve.registry import ModelRegistry
from litecls.serve.settings import ServeSettings

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


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


async def require_api_key(settings: Annotated[ServeSettings, Depends(get_settings)],
                    key: Annotated[str | None, Security(_api_key_header)] = None,
                    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> None:
    """Raise 401 unless the ``X-API-Key`` header (or a Bearer token) is the service's key, when set."""
    given = key if key is not None else (bearer.credentials if bearer is not None else None)
    if not key_matches(settings.api_key, given):
        raise ApiError(401, "missing API key (X-API-Key header)" if given is None else "wrong API key",
                       headers={"WWW-Authenticate": "Bearer"})


Settings = Annotated[ServeSettings, Depends(get_settings)]
Registry = Annotated[ModelRegistry, Depends(get_registry)]
Metrics = Annotated[ServeMetrics, Depends(get_metrics)]
Pool = Annotated[ThreadPoolExecutor, Depends(get_pool)]
