"""``POST /v1/classify`` and ``POST /v1/models/{model}:classify``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from litecls.serve.dependencies import Service, ServiceState, Settings, require_api_key
from litecls.serve.errors import ApiError
from litecls.serve.pipeline import classify_uploads
from litecls.serve.responses import FastJSONResponse
from litecls.serve.schemas import ClassifyOptions, ClassifyResponse, ErrorResponse

router = APIRouter(prefix="/v1", tags=["classify"], dependencies=[Depends(require_api_key)])

_LIST_FIELDS = ("allow", "deny")
_NOT_OPTIONS = ("model", "filename")
#: The options of a request that gives none (read, never changed).
DEFAULT_OPTIONS = ClassifyOptions()


@contextlib.contextmanager
def admitted(request: Request, service: Service) -> Iterator[None]:
    """Admit a request, or answer 503 with ``Retry-After`` when ``--max-queue`` requests are in.

    A context manager called by the route rather than a dependency: a generator dependency
    costs FastAPI an exit stack per request. The ``litecls_queue_depth`` gauge reads
    ``in_flight`` when scraped (see ``create_app``).
    """
    state, settings = request.app.state, service.settings
    if state.in_flight >= settings.max_queue:
        raise ApiError(503, f"busy: {state.in_flight} requests in progress (--max-queue "
                       f"{settings.max_queue}); retry shortly", headers={"Retry-After": "1"})
    state.in_flight += 1
    try:
        yield
    finally:
        state.in_flight -= 1


def parse_options(query: dict[str, list[str]], form: dict[str, list[str]]) -> ClassifyOptions:
    """Options from query and form fields (form wins); 422 naming the bad field."""
    merged = {**query, **form}
    values = {key: (items if key in _LIST_FIELDS else items[-1])
              for key, items in merged.items() if key not in _NOT_OPTIONS}
    if not values:
        return DEFAULT_OPTIONS  # most requests: no validation to run
    try:
        return ClassifyOptions(**values)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}"
                            for e in exc.errors())
        raise ApiError(422, f"invalid options: {details}") from None


def _multi(items) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


async def read_uploads(request: Request, settings: Settings) -> tuple[list[tuple[str, bytes]], dict]:
    """The request's images (multipart files, or any other body as one image) and its form fields."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=settings.max_images, max_fields=200)
        uploads, fields = [], []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append((value.filename or f"{key}[{len(uploads)}]", await value.read()))
            else:
                fields.append((key, value))
        await form.close()
        return uploads, _multi(fields)
    body = await request.body()
    return [(request.query_params.get("filename") or "body", body)], {}


async def classify_request(request: Request, model_name: str | None, service: Service) -> JSONResponse:
    """Answer a classify call: admit it (or 503), read its images and options, classify them.

    The work of both classify routes, whether FastAPI calls them or the service's fast path
    (:mod:`litecls.serve.fastpath`) does; the API key is checked before.

    Args:
        request: the request (its body or multipart form, its query fields).
        model_name: the model named in the path, or ``None`` (then the ``model`` field, or the default).
    Returns:
        ``{"model", "results"}``, one row per image.
    Raises:
        ApiError: 503 when ``--max-queue`` requests are in, 413 over ``--max-images``, 422 for
            bad options, no image, or no image that could be read.
        ModelNotFound, LabelsError, ModelFileError: a model that is unknown or cannot be used.
    """
    with admitted(request, service):
        return await _admitted(request, model_name, service)


async def _admitted(request: Request, model_name: str | None, service: Service) -> JSONResponse:
    settings, registry, metrics, pool = service
    uploads, form = await read_uploads(request, settings)
    options = parse_options(_multi(request.query_params.multi_items()), form)
    name = model_name or (form.get("model") or [None])[-1] or request.query_params.get("model")
    if not uploads:
        raise ApiError(422, "no image in the request: send multipart files or an image as the body")
    if len(uploads) > settings.max_images:
        raise ApiError(413, f"{len(uploads)} images in one request; the limit is {settings.max_images}")
    async with registry.use(name, options.threads) as model:
        rows = await classify_uploads(model, uploads, options, pool)
    good = sum("error" not in row for row in rows)
    metrics.classified(model.offer.name, good, len(rows) - good)
    if not good:
        message = rows[0]["error"] if len(rows) == 1 else f"none of the {len(rows)} images could be read"
        raise ApiError(422, message, results=rows)
    # The rows as they are (not re-validated into ClassifyResponse, which documents them): exactly
    # the objects `litecls classify --json` prints, plus inference_ms, with no null fields added.
    return FastJSONResponse({"model": model.offer.name, "results": rows})


_RESPONSES = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
              422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}
_OPTION_PARAMS = [
    {"name": name, "in": "query", "required": False, "description": field.description or "",
     "schema": {"type": "array", "items": {"type": "string"}} if name in _LIST_FIELDS else {"type": "string"}}
    for name, field in ClassifyOptions.model_fields.items()]
_BODY_DOC = {"parameters": _OPTION_PARAMS, "requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/classify", response_model=ClassifyResponse, responses=_RESPONSES, openapi_extra=_BODY_DOC)
async def classify(request: Request, service: ServiceState, model: str | None = None) -> JSONResponse:
    """Classify one or several images with ``model`` (default: the service's first model).

    Images: multipart files (any field name), or one image as the raw body.
    Options: query or form fields (see the parameters); allow/deny repeat.
    Each image gets the row ``litecls classify --json`` prints, errors included.
    """
    return await classify_request(request, model, service)


@router.post("/models/{model}:classify", response_model=ClassifyResponse, responses=_RESPONSES,
             openapi_extra=_BODY_DOC)
async def classify_with(model: str, request: Request, service: ServiceState) -> JSONResponse:
    """Like ``POST /v1/classify`` with the model named in the path."""
    return await classify_request(request, model, service)
