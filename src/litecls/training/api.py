"""``train()``: a zoo backbone + a new head, trained on a :class:`Dataset` (the Model Maker flow).

Default: the backbone stays frozen; its features are computed once with
LiteRT (and cached), and only the head trains, in milliseconds per epoch.
``fine_tune=True`` first trains that head, then also the top (or all) of
the backbone in PyTorch, at a lower learning rate, on augmented images.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import torch

from litecls.errors import TrainingError
from litecls.models.zoo import DEFAULT_MODEL
from litecls.progress import say
from litecls.training.data import Dataset, ensure_trainable
from litecls.training.features import FeatureCache, backbone_file, training_processing
from litecls.training.finetune import fine_tune
from litecls.training.head import ClassifierHead
from litecls.training.model import TrainedModel
from litecls.training.options import TrainOptions
from litecls.training.trainer import (
    Checkpoint,
    EpochRecord,
    RunContext,
    run_stage,
    tensor_batches,
    torch_threads,
    validator,
)

__all__ = ["TrainOptions", "train", "train_head"]


def _fingerprint(options: TrainOptions, train: Dataset, val: Dataset | None) -> dict:
    """What a checkpoint must agree with to be resumed: data and every setting that shapes training."""
    digest = hashlib.sha1()
    for part in (train, val):
        if part is not None:
            for path, label in zip(part.paths, part.labels, strict=True):
                digest.update(f"{part.name}|{path}|{label}\n".encode())
    settings = asdict(options)
    settings.pop("show_progress")
    return {**settings, "classes": list(train.classes), "data": digest.hexdigest()}


def _start(opts: TrainOptions, train_data: Dataset, val_data: Dataset | None, checkpoint: Checkpoint,
           resume: bool, on_epoch_end: Iterable[Callable[[EpochRecord], None]]) -> RunContext:
    """The run's shared context; with ``resume``, the checkpoint it continues from."""
    ensure_trainable(train_data, val_data)
    if val_data is not None and val_data.classes != train_data.classes:
        raise TrainingError("the validation set's classes differ from the training set's")
    fingerprint = _fingerprint(opts, train_data, val_data)
    state = None
    if resume:
        if checkpoint.folder is None:
            raise TrainingError("resume needs a checkpoint folder")
        state = checkpoint.load(fingerprint)
        if state is None:
            raise TrainingError(f"no checkpoint to resume from in {checkpoint.folder}")
        say(f"resuming from {checkpoint.path}: {state['stage']} epoch {state['epoch']}"
            + (" (finished)" if state.get("finished") else ""), opts.show_progress)
    history = [EpochRecord(**r) for r in state["history"]] if state else []
    weights = torch.from_numpy(train_data.class_weights()) if opts.class_weights else None
    return RunContext(opts, train_data, val_data, checkpoint, fingerprint, history, weights, state,
                      tuple(on_epoch_end))


def train_head(trained: TrainedModel, run: RunContext) -> None:
    """Stage 1: a new head on the backbone's frozen features (computed once, with LiteRT).

    Args:
        trained: the model being trained; its ``head`` is set here.
        run: the run's settings, data, checkpoint and history.

    Raises:
        CacheDirError: the backbone's file cannot be cached.
    """
    opts, show = run.options, run.show
    started = time.perf_counter()
    backbone_file(opts.model, opts.image_size, trained.cache, show_progress=show)
    train_x, train_y = trained.features(run.train_data, desc="train", show_progress=show)
    val_xy = None if run.val_data is None else trained.features(run.val_data, desc="val", show_progress=show)
    trained.timings["feature_extraction"] = time.perf_counter() - started

    torch.manual_seed(opts.seed)
    head = ClassifierHead(train_x.shape[1], len(run.train_data.classes), opts.dropout, opts.hidden_units)
    trained.head = head
    started = time.perf_counter()
    if run.state is None or run.state["stage"] == "head":
        inputs, labels = torch.from_numpy(train_x), torch.from_numpy(train_y)
        validate = None
        if val_xy is not None:
            val_inputs = torch.from_numpy(val_xy[0])
            validate = validator(head, lambda a, b: val_inputs[a:b], len(val_inputs),
                                 torch.from_numpy(val_xy[1]), run.class_weights, chunk=len(val_inputs))
        stage = run.stage("head", opts.head_epochs if opts.fine_tune else opts.epochs,
                          [{"params": list(head.parameters()), "lr": opts.lr}],
                          -(-len(labels) // opts.batch_size))
        with torch_threads(1):
            trained.stages["head"] = run_stage(
                head, stage, tensor_batches(inputs, labels, opts.batch_size, opts.seed, "head"), validate,
                head.train, run)
    trained.timings["training"] = time.perf_counter() - started


def train(train_data: Dataset, val_data: Dataset | None = None, model: str = DEFAULT_MODEL,
          checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
          cache_dir: str | os.PathLike | None = None,
          on_epoch_end: Iterable[Callable[[EpochRecord], None]] = (), **options) -> TrainedModel:
    """Train a classifier for ``train_data``'s classes on zoo backbone ``model``.

    Args:
        train_data: the training images and labels.
        val_data: the validation set (early stopping; the best epoch is kept).
        model: the zoo backbone.
        checkpoint_dir: a folder for a checkpoint after every epoch (and cached features).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        cache_dir: where the backbone's LiteRT file is kept (default: the zoo cache).
        on_epoch_end: callbacks given each :class:`EpochRecord`.
        **options: :class:`TrainOptions` fields (``epochs``, ``fine_tune``, ``lr``, ``seed``...).

    Returns:
        The trained model (evaluate it, export it).

    Raises:
        TrainingError: bad settings, or no checkpoint that fits to resume from.
        DatasetError: a set too small or with a single class.
        UnknownModelError: ``model`` is not a zoo model.
    """
    opts = TrainOptions(model=model, **options).resolved()
    checkpoint = Checkpoint(Path(checkpoint_dir) if checkpoint_dir is not None else None)
    run = _start(opts, train_data, val_data, checkpoint, resume, on_epoch_end)
    feature_cache = FeatureCache(checkpoint.folder / "features") if checkpoint.folder is not None else None
    trained = TrainedModel(classes=list(train_data.classes), backbone_name=opts.model,
                           preprocessing=training_processing(opts.model, opts.image_size), head=None,
                           backbone=None, train_data=train_data, options=asdict(opts),  # type: ignore[arg-type]
                           cache=cache_dir, feature_cache=feature_cache)
    train_head(trained, run)
    if opts.fine_tune:
        started = time.perf_counter()
        fine_tune(trained, run)
        trained.timings["fine_tuning"] = time.perf_counter() - started
    trained.history = run.history
    return trained
