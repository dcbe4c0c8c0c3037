"""The app factory: ``create_app(settings)`` wires settings, registry, routers and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from litecls import __version__
from litecls.serve.errors import BodyLimitMiddleware, install_handlers
from litecls.serve.fastpath import ClassifyFastPath
from litecls.serve.metrics import MetricsMiddleware, ServeMetrics
from litecls.serve.registry import ModelRegistry
from litecls.serve.routers import classify, embed, health, models, web
from litecls.serve.settings import ServeSettings


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``settings`` (default: ``ServeSettings()``).

    Args:
        settings: models offered, limits, batching and API key.
    Returns:
        The app; run it with uvicorn (``litecls serve`` does). Its lifespan
        loads the default model (``/readyz`` answers 200 after that) and, at
        shutdown, lets queued images finish before unloading the models.
    Raises:
        ModelNotFound: a start-up model is neither a file nor a zoo model.
    """
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    registry = ModelRegistry(settings, on_batch=lambda name, size: metrics.batch_size.labels(name)
                             .observe(size))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="litecls-decode")
        try:
            if settings.preload:
                async with registry.use(None):
                    pass
            app.state.ready = True
            yield
        finally:
            app.state.stopping = True
            await registry.aclose()
            if getattr(app.state, "embedders", None) is not None:  # made by the embed router on first use
                await asyncio.to_thread(app.state.embedders.close)
            await asyncio.to_thread(app.state.pool.shutdown, True)

    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from a package, not a CDN.
    app = FastAPIOffline(title="litecls serve", version=__version__, lifespan=lifespan,
                         description="Image classification with LiteRT models: the zoo's and yours. "
                                     "The web app is at `/`.")
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.ready = False
    app.state.stopping = False
    app.state.in_flight = 0
    metrics.queue_depth.set_function(lambda: app.state.in_flight)  # read when scraped, not per request
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(classify.router)
    app.include_router(embed.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(ClassifyFastPath)  # outermost of ours: the classify routes skip the rest
    return app
