"""One request's images: decode in the thread pool, classify through the batcher, filter, report."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from dataclasses import replace

import numpy as np

from litecls.errors import ImageError
from litecls.processing.postprocess import category_mask, is_ambiguous
from litecls.processing.region import ImageProcessingOptions, RectF
from litecls.serve.registry import TOP_CATEGORIES, LoadedModel
from litecls.serve.schemas import ClassifyOptions
from litecls.tasks import ClassificationResult, ImageClassifier
from litecls.tasks.classification_result import result_row


def region_options(roi: tuple[float, float, float, float] | None) -> ImageProcessingOptions | None:
    """The library's region options for a request's ``roi`` (``left, top, right, bottom`` fractions).

    Args:
        roi: the validated region, or ``None`` for the whole image.
    Returns:
        The options :meth:`ImageClassifier.preprocess` cuts the region with, or ``None``.
    """
    if roi is None:
        return None
    left, top, right, bottom = roi
    return ImageProcessingOptions(region_of_interest=RectF(left=left, top=top, right=right, bottom=bottom))


def decode(classifier: ImageClassifier, data: bytes, name: str,
           roi: tuple[float, float, float, float] | None = None) -> np.ndarray | ImageError:
    """The model's input tensor for uploaded image bytes, or the :class:`ImageError` saying why not.

    Args:
        classifier: the model's classifier (its resizing and normalisation are used).
        data: the uploaded file's bytes.
        name: the upload's file name, put in error messages in place of ``<bytes>``.
        roi: ``(left, top, right, bottom)`` fractions of the image to classify, or ``None``.
    Returns:
        A ``[1, H, W, C]`` tensor, or the error (the CLI's message, naming the upload).
    """
    try:
        return classifier.preprocess(data, region_options(roi))
    except ImageError as exc:
        message = str(exc)
        if message.startswith("<bytes>") or message.startswith("<image>"):
            message = name + message[7:]
        return ImageError(message)


def filter_result(result: ClassificationResult, classifier: ImageClassifier,
                  options: ClassifyOptions, mask: np.ndarray | None) -> ClassificationResult:
    """Apply one request's allow/deny mask, threshold and ``max_results`` to a full result.

    The registry's classifiers rank every category, so one interpreter serves
    requests with any options; ``ambiguous`` is recomputed among the allowed
    categories exactly as :class:`ImageClassifier` does.
    """
    categories = result.categories
    ambiguous = result.ambiguous
    if mask is not None:
        categories = [c for c in categories if mask[c.index]]
        opts = classifier.options
        ambiguous = is_ambiguous([c.score for c in categories[:2]], opts.ambiguity_min_score,
                                 opts.ambiguity_margin)
    if options.score_threshold > 0:
        categories = [c for c in categories if c.score >= options.score_threshold]
    if options.max_results > 0:
        categories = categories[:options.max_results]
    if not result.classifications:
        return result
    first = replace(result.classifications[0], categories=categories)
    return replace(result, classifications=[first, *result.classifications[1:]], ambiguous=ambiguous)


def needs_full_ranking(options: ClassifyOptions) -> bool:
    """True when a request's options need more than the batched classifiers' best categories."""
    return bool(options.allow or options.deny) or not 0 < options.max_results <= TOP_CATEGORIES


async def classify_tensor(model: LoadedModel, tensor: np.ndarray, options: ClassifyOptions,
                          mask: np.ndarray | None) -> ClassificationResult:
    """One image's result for a request: batched, or ranked in full when its options need it."""
    if needs_full_ranking(options):  # the full-ranking classifier runs (and is made) on the inference thread
        result = await model.batcher.run_alone(lambda: model.full().classify_tensor(tensor))
        return filter_result(result, model.full(), options, mask)
    return filter_result(await model.batcher.classify(tensor), model.classifier, options, mask)


def request_mask(classifier: ImageClassifier, options: ClassifyOptions) -> np.ndarray | None:
    """The allow/deny mask of a request; ``LabelsError`` names a list entry that matches no label."""
    return category_mask(classifier.labels, options.allow, options.deny, classifier.display_names)


#: Uploads up to this size (a camera frame, a 640x480 photo) may make a batch wait for more images
#: (``--max-wait-ms``); a larger photo joins whatever is queued but never waits, since the next
#: one takes longer to decode than the wait (batching measured slower on photos when it did).
BATCH_WAIT_BYTES = 64 * 1024


async def classify_uploads(model: LoadedModel, uploads: list[tuple[str, bytes]], options: ClassifyOptions,
                           pool: Executor) -> list[dict]:
    """Classify a request's uploads; one ``litecls classify --json`` row each (plus ``inference_ms``).

    Decoding runs in ``pool``, inference through the model's batcher; a bad
    image gets its error row and the others are still classified.
    """
    loop = asyncio.get_running_loop()
    classifier, batcher = model.classifier, model.batcher
    mask = request_mask(classifier, options)
    full = needs_full_ranking(options)

    def work(name: str, data: bytes) -> ClassificationResult | ImageError:
        """On a decoding thread: decode, then classify here (no batching) or wait for the batch."""
        small = len(data) <= BATCH_WAIT_BYTES  # a batch waits only for images quick to decode
        with batcher.decoding() if small else contextlib.nullcontext():
            tensor = decode(classifier, data, name, options.roi)
        if isinstance(tensor, ImageError):
            return tensor
        if full:  # the full-ranking classifier runs (and is made) on the inference thread
            result = batcher.submit(lambda: model.full().classify_tensor(tensor)).result()
            return filter_result(result, model.full(), options, mask)
        result = batcher.submit(tensor, small).result() if batcher.batching else batcher.classify_now(tensor)
        return filter_result(result, classifier, options, mask)

    async def one(name: str, data: bytes) -> dict:
        # One hand-over to the pool and one back: the decoding thread queues the tensor for the
        # inference thread and waits for its batch, so the event loop is not on the way.
        result = await loop.run_in_executor(pool, work, name, data)
        row = result_row(name, result)
        if not isinstance(result, ImageError):
            row["inference_ms"] = round(result.inference_ms, 3)
        return row

    if len(uploads) == 1:  # no task to create for the usual single image
        return [await one(*uploads[0])]
    return list(await asyncio.gather(*(one(name, data) for name, data in uploads)))
