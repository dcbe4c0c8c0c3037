"""The model registry: which models a request may name, loaded on first use, LRU-bounded.

Requests name models, never files: a model is a zoo reference
(``efficientnet_lite0``, ``mobilenet_v2:float32``) or the stem of a file given
to ``litecls serve --model``. Nothing a request sends reaches the filesystem
as a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from litecls.errors import ExportError, UnknownModelError
from litecls.models.registry import get_config, list_models
from litecls.serve.batching import Batcher
from litecls.serve.settings import ServeSettings
from litecls.tasks import ImageClassifier, ImageClassifierOptions


class ModelNotFound(LookupError):
    """A request named a model this service does not offer."""


@dataclass
class Offer:
    """A model the service can load: its public name and where it comes from."""

    name: str
    path: Path | None  # a file given on the command line; None for a zoo model
    zoo_name: str | None = None
    precision: str | None = None

    @property
    def published_top1(self) -> float | None:
        """ImageNet top-1 (%) reported by the weights' authors, for zoo models."""
        if not self.zoo_name:
            return None
        figure, _kind = get_config(self.zoo_name).published_accuracy(self.precision or "float32")
        return figure.top1 if figure else None


#: Categories the batched classifiers rank per image; requests wanting more, or allow/deny
#: lists, use the model's full-ranking classifier (ranking all 1,000 classes costs ~0.5 ms an image).
TOP_CATEGORIES = 10


@dataclass
class LoadedModel:
    """A loaded model: its batched classifiers (best :data:`TOP_CATEGORIES`) and, made on first
    need, a classifier ranking every category, for requests with lists or more results."""

    offer: Offer
    threads: int
    classifier: ImageClassifier
    batcher: Batcher
    path: Path
    options: ImageClassifierOptions
    users: int = field(default=0)
    _full: ImageClassifier | None = field(default=None, repr=False)

    def full(self) -> ImageClassifier:
        """The classifier ranking every category (run it on the batcher's inference thread)."""
        if self._full is None:
            self._full = ImageClassifier.create_from_options(replace(self.options, max_results=-1))
        return self._full

    @property
    def key(self) -> tuple[str, int]:
        """``(name, threads)``: each thread count is its own interpreter."""
        return self.offer.name, self.threads


def _zoo_offer(ref: str) -> Offer | None:
    from litecls.models.zoo import parse_model_ref

    try:
        name, precision = parse_model_ref(ref)
    except (UnknownModelError, ExportError):
        return None
    return Offer(f"{name}:{precision}", None, name, precision)


class ModelRegistry:
    """Loads offered models on first use and keeps at most ``max_models`` loaded.

    Args:
        settings: the service's settings (models offered, limits, batching).
        on_batch: called with ``(model name, batch size)`` for every batch run.
    """

    def __init__(self, settings: ServeSettings,
                 on_batch: Callable[[str, int], None] | None = None) -> None:
        self._settings = settings
        self._on_batch = on_batch
        self._files: dict[str, Offer] = {}
        self.default: str = ""
        for ref in settings.models:
            offer = self._offer_for_setting(ref)
            self._files.setdefault(offer.name, offer)
            self.default = self.default or offer.name
        self._loaded: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future] = {}

    @staticmethod
    def _offer_for_setting(ref: str) -> Offer:
        text = os.fspath(ref)
        zoo = None if ("/" in text or text.endswith(".tflite") or Path(text).exists()) else _zoo_offer(text)
        if zoo is not None:
            return zoo
        path = Path(text)
        if not path.is_file():
            raise ModelNotFound(f"{text}: no such model file, and not a zoo model "
                                f"(zoo models: {', '.join(list_models())})")
        return Offer(path.stem, path.resolve())

    def find(self, name: str | None) -> Offer:
        """The offer a request's model name means (``None``: the default).

        Raises:
            ModelNotFound: not a file given at start-up, nor a zoo model.
        """
        name = name or self.default
        if name in self._files:
            return self._files[name]
        offer = _zoo_offer(name)
        if offer is None:
            raise ModelNotFound(f"unknown model {name!r}: this service offers "
                                f"{', '.join(self._files)} and the zoo models "
                                f"({', '.join(list_models())}, optionally :PRECISION)")
        return self._files.get(offer.name, offer)

    def offers(self) -> list[Offer]:
        """Every model a request may name: the start-up files, then each zoo model and precision."""
        from litecls.models.registry import PRECISIONS

        found = dict(self._files)
        for name in list_models():
            for precision in PRECISIONS:
                found.setdefault(f"{name}:{precision}", Offer(f"{name}:{precision}", None, name, precision))
        return list(found.values())

    def file_of(self, offer: Offer) -> Path | None:
        """The model file of an offer when it exists already (zoo files may still need building)."""
        if offer.path is not None:
            return offer.path
        from litecls.models.zoo import built_path

        return built_path(offer.zoo_name, offer.precision, self._settings.cache_dir)

    @property
    def loaded(self) -> list[LoadedModel]:
        """Loaded models, least recently used first."""
        return list(self._loaded.values())

    @contextlib.asynccontextmanager
    async def use(self, name: str | None, threads: int | None = None) -> AsyncIterator[LoadedModel]:
        """Hold model ``name`` (loading it on first use) for the duration of a request.

        Raises:
            ModelNotFound: an unknown model name.
            ModelFileError, LabelsError: the model cannot be loaded.
        """
        model = await self._get(self.find(name), threads or self._settings.threads)
        try:
            yield model
        finally:
            model.users -= 1
            await self._trim()

    async def _get(self, offer: Offer, threads: int) -> LoadedModel:
        """The loaded model for ``(offer, threads)`` with one more user, loading it if needed."""
        key = (offer.name, threads)
        while True:
            model = self._loaded.get(key)
            if model is not None:
                self._loaded.move_to_end(key)
                model.users += 1
                return model
            pending = self._loading.get(key)
            if pending is not None:  # another request is loading it: wait, then look again
                await asyncio.shield(pending)
                continue
            pending = self._loading[key] = asyncio.get_running_loop().create_future()
            try:
                model = await asyncio.to_thread(self._load, offer, threads)
            except asyncio.CancelledError:
                pending.cancel()
                raise
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # retrieved: no "never retrieved" warning when nobody waits
                raise
            finally:
                del self._loading[key]
            model.users += 1
            self._loaded[key] = model
            pending.set_result(model)
            await self._trim()
            return model

    def _load(self, offer: Offer, threads: int) -> LoadedModel:
        model_path = str(offer.path) if offer.path is not None else offer.name
        options = ImageClassifierOptions(model_path=model_path, max_results=TOP_CATEGORIES,
                                         num_threads=threads, cache_dir=self._settings.cache_dir)
        classifier = ImageClassifier.create_from_options(options)
        from litecls.tasks.image_classifier import resolve_model

        path, _ = resolve_model(model_path, self._settings.cache_dir)

        def on_batch(size: int) -> None:
            if self._on_batch is not None:
                self._on_batch(offer.name, size)

        batcher = Batcher(classifier, lambda: ImageClassifier.create_from_options(options),
                          self._settings.max_batch, self._settings.max_wait_ms, on_batch)
        model = LoadedModel(offer, threads, classifier, batcher, path, options)

        def close_full() -> None:
            if model._full is not None:
                model._full.close()

        batcher.on_close = close_full
        return model

    async def _trim(self) -> None:
        """Unload least recently used idle models while more than ``max_models`` are loaded."""
        while len(self._loaded) > self._settings.max_models:
            idle = next((key for key, m in self._loaded.items() if m.users == 0), None)
            if idle is None:
                return  # all busy: unload when a request lets one go
            model = self._loaded.pop(idle)
            await model.batcher.aclose()

    async def aclose(self) -> None:
        """Unload every model (after their queued images are done)."""
        while self._loaded:
            _, model = self._loaded.popitem(last=False)
            await model.batcher.aclose()
