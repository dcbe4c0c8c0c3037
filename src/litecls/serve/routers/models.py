"""``GET /v1/models``: the models a request may name, loaded or not, with their metadata."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from litecls.models.registry import get_config
from litecls.serve.dependencies import Registry, require_api_key
from litecls.serve.schemas import ModelInfo, ModelsResponse

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_api_key)])


@router.get("/models", response_model=ModelsResponse)
async def list_models(registry: Registry) -> ModelsResponse:
    """Start-up models first, then every zoo model and precision; sizes of files already on disk."""
    loaded: dict[str, list] = {}
    for model in registry.loaded:
        loaded.setdefault(model.offer.name, []).append(model)
    infos = []
    for offer in registry.offers():
        path = registry.file_of(offer)
        info = ModelInfo(name=offer.name, loaded=offer.name in loaded, default=offer.name == registry.default,
                         source="zoo" if offer.zoo_name else "file", precision=offer.precision,
                         file_size_bytes=path.stat().st_size if path is not None and path.is_file() else None,
                         published_top1=offer.published_top1)
        if offer.zoo_name:
            config = get_config(offer.zoo_name)
            info.input_size = [config.input_size, config.input_size]
            info.labels_count = config.num_classes
        if offer.name in loaded:
            classifier = loaded[offer.name][0].classifier
            spec = classifier.signature.input
            info.input_size = list(spec.size)
            info.input_dtype = spec.dtype.name
            info.labels_count = classifier.signature.output.num_classes
            info.threads = sorted(m.threads for m in loaded[offer.name])
            if offer.precision is None:
                info.precision = spec.dtype.name
        infos.append(info)
    return ModelsResponse(default=registry.default, models=infos)
