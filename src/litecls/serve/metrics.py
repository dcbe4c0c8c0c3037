"""Prometheus metrics of one service instance (its own registry, so tests can run several apps)."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServeMetrics:
    """Requests by status, latency, batch sizes, queue depth and images classified."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("litecls_requests_total", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("litecls_request_seconds", "HTTP request latency", ["route"],
                                 buckets=(.002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10),
                                 registry=self.registry)
        self.batch_size = Histogram("litecls_batch_size", "images per interpreter invoke batch", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.queue_depth = Gauge("litecls_queue_depth", "requests admitted and not yet answered",
                                 registry=self.registry)
        self.images = Counter("litecls_images_classified_total", "images classified", ["model"],
                              registry=self.registry)
        self.image_errors = Counter("litecls_image_errors_total", "images that could not be read",
                                    registry=self.registry)
        self.models_loaded = Gauge("litecls_models_loaded", "models loaded", registry=self.registry)
        #: the labelled children ``record`` updates, by (route, status): ``labels()`` costs a lock
        #: and a tuple of strings per call, on the event loop of every request
        self._answered: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._images: dict[str, Counter] = {}

    def record(self, route: str, status: int, seconds: float) -> None:
        """Count one HTTP response of ``route`` (a path template) and observe its latency.

        Args:
            route: the route's path template (``/v1/models/{model}:classify``), or ``unmatched``.
            status: the HTTP status answered.
            seconds: the time from the request's arrival to its answer.
        """
        children = self._answered.get((route, status))
        if children is None:
            children = self._answered[(route, status)] = (self.requests.labels(route, str(status)),
                                                          self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def classified(self, model: str, good: int, bad: int) -> None:
        """Count a request's images: ``good`` classified by ``model``, ``bad`` that could not be read.

        Args:
            model: the model's name (the ``model`` label).
            good: images classified.
            bad: images that could not be read.
        """
        child = self._images.get(model)
        if child is None:
            child = self._images[model] = self.images.labels(model)
        child.inc(good)
        self.image_errors.inc(bad)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware counting every HTTP response by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            name = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.record(name, status["code"], time.perf_counter() - started)
