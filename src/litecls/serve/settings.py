"""What the service is told at start-up: models, limits, batching, API key."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

#: The loopback address: nothing off this machine can reach the service unless told otherwise.
LOOPBACK = "127.0.0.1"


def default_threads() -> int:
    """Interpreter threads when not given: the CPU count, at most 4 (more rarely pays off)."""
    return max(1, min(4, os.cpu_count() or 1))


def default_decode_workers() -> int:
    """Decoding threads when not given: the CPU count + 4, at most 32 (Python's default pool size).

    More than the cores: each thread decodes, then waits its turn at the interpreter, so with only
    one per core an image is seldom ready the moment an invoke ends (measured in docs/decisions.md).
    """
    return min(32, (os.cpu_count() or 1) + 4)


class ServeSettings(BaseModel):
    """Settings of one service instance (``litecls serve`` builds them from its options).

    ``models``: the models offered besides the zoo's, as zoo references
    (``mobilenet_v2:float32``) or .tflite paths; the first is the default. A
    file is offered under its stem (``my_model`` for ``/x/my_model.tflite``):
    requests name models, never paths. ``max_batch``: most images per batched invoke (4 by
    default, where batching measured faster; 1 turns dynamic batching off; see docs/serve.md).
    ``max_queue``: requests admitted at once; more are answered 503 with
    ``Retry-After``. ``api_key``: when set, every ``/v1`` call needs it in the
    ``X-API-Key`` header (or ``Authorization: Bearer``; ``api_key`` query
    field for the WebSocket, which browsers cannot give headers).
    """

    model_config = ConfigDict(frozen=True)

    models: tuple[str, ...] = ("efficientnet_lite0",)
    host: str = LOOPBACK
    port: int = Field(8000, ge=0, le=65535)
    threads: int = Field(default_factory=default_threads, ge=1)
    api_key: str | None = None
    max_models: int = Field(4, ge=1)
    max_batch: int = Field(4, ge=1, le=64)
    max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    max_upload_mb: float = Field(20.0, gt=0.0)
    max_queue: int = Field(64, ge=1)
    max_images: int = Field(64, ge=1, description="images in one request")
    decode_workers: int = Field(default_factory=default_decode_workers, ge=1)
    cache_dir: str | None = None
    preload: bool = True

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)
