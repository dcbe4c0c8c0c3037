"""``train()``: a zoo backbone + a new head, trained on a :class:`Dataset` (the Model Maker flow).

Default: the backbone stays frozen; its features are computed once with
LiteRT (and cached), and only the head trains, in milliseconds per epoch.
``fine_tune=True`` first trains that head, then also the top (or all) of
the backbone in PyTorch, at a lower learning rate, on augmented images.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from litecls.models.registry import get_config
from litecls.training.data import Dataset, ensure_trainable
from litecls.training.features import FeatureCache, backbone_file, training_processing
from litecls.training.head import ClassifierHead
from litecls.training.model import TrainedModel
from litecls.training.trainer import (
    Checkpoint,
    EpochRecord,
    Stage,
    TrainingError,
    run_stage,
    tensor_batches,
    torch_threads,
)


@dataclass
class TrainOptions:
    """Hyper-parameters of :func:`train`; ``None`` means "the default of the mode" (head-only / fine-tune)."""

    model: str = "efficientnet_lite0"
    #: Epochs of the main stage: the head (head-only) or the backbone (fine-tune). Default 40 / 6.
    epochs: int | None = None
    #: Epochs of the head warm-up before fine-tuning (early stopping applies).
    head_epochs: int = 40
    batch_size: int | None = None  # default 64 / 32
    #: Peak learning rate (AdamW) of the head on frozen features.
    lr: float = 1e-3
    #: Fine-tuning: peak learning rate of the backbone stages; the head gets ten times it.
    #: 3e-4 gave Fashion-MNIST (500 a class) 91.2-91.5 % against 90.6 % for 1e-4.
    fine_tune_lr: float = 3e-4
    weight_decay: float = 1e-4
    dropout: float = 0.2
    hidden_units: int = 0
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    #: Early stopping: epochs without a better validation loss before stopping.
    patience: int = 8
    class_weights: bool = True
    seed: int = 0
    fine_tune: bool = False
    #: "top" (last third of the backbone's stages), "all", or a number of stages.
    fine_tune_layers: str | int = "top"
    #: Random resized crop, flip and colour jitter; default on for fine-tuning (head-only
    #: training computes features once, so it cannot augment).
    augment: bool | None = None
    #: Fine-tuning the top only: versions of each training image (the first unaugmented)
    #: whose frozen-bottom feature maps are computed once; epochs take them in turn.
    augment_views: int = 2
    #: Training resolution (default: the backbone's own). Exported files take this size.
    image_size: int | None = None
    show_progress: bool = True

    def resolved(self) -> TrainOptions:
        """A copy with every ``None`` default filled in for the mode, and the settings checked."""
        config = get_config(self.model)
        out = TrainOptions(**asdict(self))
        out.model = config.name
        out.epochs = self.epochs if self.epochs is not None else (6 if self.fine_tune else 40)
        out.batch_size = self.batch_size or (32 if self.fine_tune else 64)
        out.augment = self.fine_tune if self.augment is None else self.augment
        out.image_size = self.image_size or config.input_size
        if out.augment and not out.fine_tune:
            raise TrainingError("augmentation needs fine_tune=True: head-only training computes each "
                                "image's features once, so every epoch sees the same images")
        for name in ("epochs", "batch_size", "head_epochs", "patience", "image_size", "augment_views"):
            if getattr(out, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(out, name)}")
        if out.image_size < 32:
            raise TrainingError(f"image_size must be at least 32 pixels, got {out.image_size}")
        if not (0 < out.lr < 1 and 0 < out.fine_tune_lr < 0.1 and 0 <= out.dropout < 1
                and 0 <= out.label_smoothing < 1):
            raise TrainingError("lr must be in (0, 1), fine_tune_lr in (0, 0.1); dropout and "
                                "label_smoothing in [0, 1)")
        return out


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


def _say(message: str, show: bool) -> None:
    if show:
        print(message, file=sys.stderr, flush=True)


def train(train_data: Dataset, val_data: Dataset | None = None, model: str = "efficientnet_lite0",
          checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
          cache_dir: str | os.PathLike | None = None,
          on_epoch_end: Iterable[Callable[[EpochRecord], None]] = (), **options) -> TrainedModel:
    """Train a classifier for ``train_data``'s classes on zoo backbone ``model``.

    ``options`` are :class:`TrainOptions` fields (``epochs``, ``fine_tune``,
    ``lr``, ``seed``...). With ``checkpoint_dir`` a checkpoint is written
    after every epoch (and features are cached there); ``resume=True``
    continues from it. ``cache_dir`` is where the backbone's LiteRT file is
    kept (default: the zoo cache). ``on_epoch_end`` callbacks get each
    :class:`EpochRecord`.
    """
    opts = TrainOptions(model=model, **options).resolved()
    ensure_trainable(train_data, val_data)
    if val_data is not None and val_data.classes != train_data.classes:
        raise TrainingError("the validation set's classes differ from the training set's")
    show = opts.show_progress
    checkpoint = Checkpoint(Path(checkpoint_dir) if checkpoint_dir is not None else None)
    fingerprint = _fingerprint(opts, train_data, val_data)
    state = None
    if resume:
        if checkpoint.folder is None:
            raise TrainingError("resume needs a checkpoint folder")
        state = checkpoint.load(fingerprint)
        if state is None:
            raise TrainingError(f"no checkpoint to resume from in {checkpoint.folder}")
        _say(f"resuming from {checkpoint.path}: {state['stage']} epoch {state['epoch']}"
             + (" (finished)" if state.get("finished") else ""), show)

    preprocessing = training_processing(opts.model, opts.image_size)
    feature_cache = FeatureCache(checkpoint.folder / "features") if checkpoint.folder is not None else None
    trained = TrainedModel(classes=list(train_data.classes), backbone_name=opts.model,
                           preprocessing=preprocessing, head=None, backbone=None,  # type: ignore[arg-type]
                           train_data=train_data, options=asdict(opts), cache=cache_dir,
                           feature_cache=feature_cache)
    history: list[EpochRecord] = [EpochRecord(**r) for r in state["history"]] if state else []
    weights = torch.from_numpy(train_data.class_weights()) if opts.class_weights else None

    # -- stage 1: the head on frozen features (features once, with LiteRT) ---------------------
    started = time.perf_counter()
    backbone_file(opts.model, opts.image_size, cache_dir,
                  progress=lambda m: _say(m, show))
    train_x, train_y = trained.features(train_data, desc="train", show_progress=show)
    val_xy = trained.features(val_data, desc="val", show_progress=show) if val_data is not None else None
    trained.timings["feature_extraction"] = time.perf_counter() - started

    torch.manual_seed(opts.seed)
    head = ClassifierHead(train_x.shape[1], len(train_data.classes), opts.dropout, opts.hidden_units)
    trained.head = head
    head_epochs = opts.head_epochs if opts.fine_tune else opts.epochs
    head_state = state if state is not None and state["stage"] == "head" else None
    started = time.perf_counter()
    if state is None or state["stage"] == "head":
        inputs, labels = torch.from_numpy(train_x), torch.from_numpy(train_y)
        validate = None
        if val_xy is not None:
            val_inputs, val_labels = torch.from_numpy(val_xy[0]), torch.from_numpy(val_xy[1])

            def validate() -> tuple[float, float]:
                with torch.no_grad():
                    logits = head(val_inputs)
                    loss = torch.nn.functional.cross_entropy(logits, val_labels, weight=weights)
                return float(loss), float((logits.argmax(1) == val_labels).float().mean())

        stage = Stage("head", head_epochs, [{"params": list(head.parameters()), "lr": opts.lr}],
                      steps_per_epoch=-(-len(labels) // opts.batch_size), weight_decay=opts.weight_decay,
                      label_smoothing=opts.label_smoothing, class_weights=weights,
                      warmup_epochs=opts.warmup_epochs, patience=opts.patience, seed=opts.seed)
        with torch_threads(1):
            trained.stages["head"] = run_stage(
                head, stage, tensor_batches(inputs, labels, opts.batch_size, opts.seed, "head"), validate,
                head.train, checkpoint, fingerprint, history, resume=head_state, show_progress=show,
                on_epoch_end=on_epoch_end)
    trained.timings["training"] = time.perf_counter() - started

    # -- stage 2: fine-tune the top (or all) of the backbone on augmented images -----------------
    if opts.fine_tune:
        from litecls.training.finetune import fine_tune

        tune_state = state if state is not None and state["stage"] == "fine-tune" else None
        trained.timings["fine_tuning"] = fine_tune(trained, opts, train_data, val_data, checkpoint,
                                                   fingerprint, history, weights, tune_state, on_epoch_end)
    trained.history = history
    return trained
