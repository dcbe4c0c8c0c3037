"""``/healthz`` (the process answers), ``/readyz`` (the default model is loaded), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from litecls.serve.dependencies import Metrics, Registry
from litecls.serve.schemas import ErrorResponse, Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(registry: Registry) -> Health:
    """Always 200 while the process serves requests."""
    return Health(status="ok", loaded_models=[f"{m.offer.name}@{m.threads}" for m in registry.loaded])


@router.get("/readyz", response_model=Health, responses={503: {"model": ErrorResponse}})
async def readyz(request: Request, registry: Registry) -> Health | JSONResponse:
    """200 once the default model is loaded and until shutdown starts; 503 (with Retry-After) otherwise."""
    state = request.app.state
    if not state.ready or state.stopping:
        reason = "shutting down" if state.stopping else "loading the default model"
        return JSONResponse({"error": f"not ready: {reason}", "status": 503}, 503,
                            headers={"Retry-After": "1"})
    return Health(status="ready", loaded_models=[f"{m.offer.name}@{m.threads}" for m in registry.loaded])


@router.get("/metrics", response_class=Response)
async def metrics(metrics: Metrics, registry: Registry) -> Response:
    """Prometheus text format: requests by status, latency, batch sizes, queue depth, images classified."""
    metrics.models_loaded.set(len(registry.loaded))
    return Response(metrics.render(), media_type=metrics.content_type)
