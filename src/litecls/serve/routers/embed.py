"""``POST /v1/embed`` and ``POST /v1/models/{model}:embed``: images -> feature vectors.

Models are named as for classification: a zoo name (``efficientnet_lite0:int8``)
means the zoo's embedding file of that model (the classifier cut before its
classifier layer); a model file given to ``litecls serve`` is used as it is if
it is an embedder, or cut the same way in memory if it is a classifier
(its metadata has labels). Embedders load on first use and stay loaded
(at most ``--max-models``, least recently used closed). Decoding and inference
run in the decode thread pool; :class:`ImageEmbedder` serialises its invokes.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from litecls.errors import ImageError
from litecls.serve.dependencies import ServiceState, require_api_key
from litecls.serve.errors import ApiError
from litecls.serve.pipeline import decode
from litecls.serve.registry import Offer
from litecls.serve.routers.classify import _RESPONSES, admitted, read_uploads
from litecls.serve.settings import ServeSettings
from litecls.tasks import BaseOptions, ImageEmbedder, ImageEmbedderOptions
from litecls.tasks.embedding_result import l2_normalized, scalar_quantized

router = APIRouter(prefix="/v1", tags=["embed"], dependencies=[Depends(require_api_key)])


class Embedders:
    """The loaded embedders by (model name, threads), least recently used first."""

    def __init__(self, settings: ServeSettings) -> None:
        self._settings = settings
        self._loaded: OrderedDict[tuple[str, int], ImageEmbedder] = OrderedDict()
        self._lock = asyncio.Lock()

    def _load(self, offer: Offer, threads: int) -> ImageEmbedder:
        if offer.path is None:  # a zoo name: its embedding file
            return ImageEmbedder.create_from_options(ImageEmbedderOptions(
                model_path=offer.name, num_threads=threads, cache_dir=self._settings.cache_dir))
        from litecls.export.embedding import embedder_bytes

        data = embedder_bytes(offer.path.read_bytes())  # a classifier: its pooled features
        return ImageEmbedder.create_from_options(ImageEmbedderOptions(
            base_options=BaseOptions(model_asset_buffer=data), num_threads=threads))

    async def get(self, offer: Offer, threads: int) -> ImageEmbedder:
        """The embedder of ``offer`` at ``threads``, loaded (in a thread) on first use."""
        key = (offer.name, threads)
        async with self._lock:
            embedder = self._loaded.get(key)
            if embedder is None:
                embedder = await asyncio.to_thread(self._load, offer, threads)
                self._loaded[key] = embedder
            self._loaded.move_to_end(key)
            while len(self._loaded) > self._settings.max_models:
                _key, old = self._loaded.popitem(last=False)
                old.close()  # waits for an invoke in progress (its lock)
            return embedder

    def close(self) -> None:
        """Close every loaded embedder (at shutdown; each waits for an invoke in progress)."""
        while self._loaded:
            self._loaded.popitem(last=False)[1].close()


def _embedders(request: Request) -> Embedders:
    state = request.app.state
    if getattr(state, "embedders", None) is None:
        state.embedders = Embedders(state.settings)
    return state.embedders


def _row(name: str, result: np.ndarray | ImageError, l2_normalize: bool, quantize: bool) -> dict:
    if isinstance(result, ImageError):
        return {"file": name, "error": str(result)}
    vector = l2_normalized(result) if l2_normalize or quantize else result
    values = scalar_quantized(vector).tolist() if quantize else [round(float(v), 7) for v in vector]
    return {"file": name, "dimension": len(values), "embedding": values}


async def _embed(request: Request, model_name: str | None, l2_normalize: bool, quantize: bool,
                 service: ServiceState) -> JSONResponse:
    with admitted(request, service):
        return await _admitted(request, model_name, l2_normalize, quantize, service)


async def _admitted(request: Request, model_name: str | None, l2_normalize: bool, quantize: bool,
                    service: ServiceState) -> JSONResponse:
    settings, registry, metrics, pool = service
    uploads, form = await read_uploads(request, settings)
    name = model_name or (form.get("model") or [None])[-1]
    if not uploads:
        raise ApiError(422, "no image in the request: send multipart files or an image as the body")
    if len(uploads) > settings.max_images:
        raise ApiError(413, f"{len(uploads)} images in one request; the limit is {settings.max_images}")
    offer = registry.find(name)
    embedder = await _embedders(request).get(offer, settings.threads)
    loop = asyncio.get_running_loop()

    def run(upload: str, data: bytes) -> np.ndarray | ImageError:
        tensor = decode(embedder, data, upload)  # type: ignore[arg-type]  # any task with preprocess()
        return tensor if isinstance(tensor, ImageError) else embedder.embed_tensors(tensor)[0]

    results = await asyncio.gather(*(loop.run_in_executor(pool, run, n, d) for n, d in uploads))
    rows = [_row(n, r, l2_normalize, quantize) for (n, _d), r in zip(uploads, results, strict=True)]
    good = sum("error" not in row for row in rows)
    metrics.classified(offer.name, good, len(rows) - good)
    if not good:
        message = rows[0]["error"] if len(rows) == 1 else f"none of the {len(rows)} images could be read"
        raise ApiError(422, message, results=rows)
    return JSONResponse({"model": offer.name, "dimension": embedder.dimension, "results": rows})


L2 = Annotated[bool, Query(description="divide each vector by its L2 norm")]
Quantize = Annotated[bool, Query(description="int8 values round(v * 128) of the L2-normalised vector")]
_DOC = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/embed", responses=_RESPONSES, openapi_extra=_DOC)
async def embed(request: Request, service: ServiceState, model: str | None = None, l2_normalize: L2 = False,
                quantize: Quantize = False) -> JSONResponse:
    """Embed one or several images with ``model`` (default: the service's first model).

    Images: multipart files (any field name), or one image as the raw body.
    Answer: ``{"model", "dimension", "results": [{"file", "dimension", "embedding"} or
    {"file", "error"}]}``, one row per image in order.
    """
    return await _embed(request, model, l2_normalize, quantize, service)


@router.post("/models/{model}:embed", responses=_RESPONSES, openapi_extra=_DOC)
async def embed_with(model: str, request: Request, service: ServiceState, l2_normalize: L2 = False,
                     quantize: Quantize = False) -> JSONResponse:
    """Like ``POST /v1/embed`` with the model named in the path."""
    return await _embed(request, model, l2_normalize, quantize, service)
