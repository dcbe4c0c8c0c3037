"""The web app: the page at ``/`` and the live-camera WebSocket ``/v1/ws/classify``.

The camera socket keeps only the newest frame: a receiver task overwrites
one slot while the classifier works, so a slow server drops frames instead of
queueing them (the page also sends a frame only when an answer comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import ValidationError

from litecls.errors import ImageError, LabelsError, ModelFileError
from litecls.serve.dependencies import key_matches
from litecls.serve.pipeline import classify_tensor, decode, request_mask
from litecls.serve.registry import ModelNotFound
from litecls.serve.schemas import ClassifyOptions

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["web app"])


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The web app's page."""
    return FileResponse(STATIC / "index.html")


@router.websocket("/v1/ws/classify")
async def camera(websocket: WebSocket) -> None:
    """Classify camera frames (binary JPEG/PNG messages); answer each with JSON.

    Query fields: ``model``, ``threads``, ``max_results``, ``score_threshold``,
    ``api_key`` (when the service has one). Each answer: ``{"seq", "model", "categories",
    "ambiguous", "inference_ms", "server_ms", "dropped"}`` or ``{"seq", "error"}``, ``seq``
    being the frame's number (from 1) and ``dropped`` how many frames a newer one replaced.
    """
    state = websocket.app.state
    params = dict(websocket.query_params)
    await websocket.accept()  # then errors can be said in words, as JSON, before closing
    if not key_matches(state.settings.api_key, params.pop("api_key", None)):
        await websocket.send_json({"error": "missing or wrong API key (api_key query field)", "status": 401})
        await websocket.close(code=1008)
        return
    model_name = params.pop("model", None)
    try:
        options = ClassifyOptions(**params)
    except ValidationError as exc:
        await websocket.send_json({"error": f"invalid options: {exc.errors()[0]['msg']}"})
        await websocket.close(code=1003)
        return
    try:
        async with state.registry.use(model_name, options.threads) as model:
            await _serve_frames(websocket, model, options)
    except (ModelNotFound, ModelFileError, LabelsError) as exc:
        with contextlib.suppress(Exception):
            await websocket.send_json({"error": str(exc)})
            await websocket.close(code=1008)
    except WebSocketDisconnect:
        pass


async def _serve_frames(websocket: WebSocket, model, options: ClassifyOptions) -> None:
    loop = asyncio.get_running_loop()
    state = websocket.app.state
    classifier = model.classifier
    mask = request_mask(classifier, options)
    slot: list[tuple[int, bytes]] = []  # (frame number, data) of the newest frame not yet taken
    arrived = asyncio.Event()
    counts = {"received": 0, "dropped": 0}
    gone = asyncio.Event()

    async def receive() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    continue
                counts["received"] += 1
                if slot:
                    counts["dropped"] += 1  # an older frame nobody classified: the newest wins
                slot[:] = [(counts["received"], data)]
                arrived.set()
        finally:
            gone.set()
            arrived.set()

    receiver = loop.create_task(receive())
    try:
        while True:
            await arrived.wait()
            arrived.clear()
            if gone.is_set():
                return
            if not slot:
                continue
            seq, data = slot.pop()
            started = time.perf_counter()
            with model.batcher.decoding():
                tensor = await loop.run_in_executor(state.pool, decode, classifier, data, "frame")
            if isinstance(tensor, ImageError):
                await websocket.send_json({"seq": seq, "error": str(tensor)})
                continue
            result = await classify_tensor(model, tensor, options, mask)
            state.metrics.classified(model.offer.name, 1, 0)
            await websocket.send_json({
                "seq": seq, "model": model.offer.name, "ambiguous": result.ambiguous,
                "categories": [{"index": c.index, "score": round(c.score, 4),
                                "label": c.display_name or c.category_name or f"class {c.index}"}
                               for c in result.categories],
                "inference_ms": round(result.inference_ms, 2),
                "server_ms": round((time.perf_counter() - started) * 1000, 2),
                "dropped": counts["dropped"]})
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
