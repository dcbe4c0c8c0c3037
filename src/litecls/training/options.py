"""The settings of one training run (:class:`TrainOptions`), shared by every stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from litecls.errors import TrainingError
from litecls.models.registry import get_config
from litecls.models.zoo import DEFAULT_MODEL


@dataclass
class TrainOptions:
    """Hyper-parameters of :func:`train`; ``None`` means "the default of the mode" (head-only / fine-tune).

    Attributes:
        model: the zoo backbone.
        epochs: epochs of the main stage: the head (head-only, default 40) or
            the backbone (fine-tune, default 6).
        head_epochs: epochs of the head warm-up before fine-tuning (early stopping applies).
        batch_size: default 64 (head-only) / 32 (fine-tune).
        lr: peak learning rate (AdamW) of the head on frozen features.
        fine_tune_lr: peak learning rate of the backbone stages; the head gets ten times
            it (docs/decisions.md: why 3e-4).
        weight_decay: AdamW's.
        dropout: before the head's linear layer(s).
        hidden_units: a hidden ReLU layer of this width in the head (0: none).
        label_smoothing: of the cross-entropy.
        warmup_epochs: linear learning-rate warm-up before the cosine decay.
        patience: early stopping: epochs without a better validation loss.
        class_weights: weight the loss by inverse class frequency.
        seed: every random choice derives from it.
        fine_tune: also train the top (or all) of the backbone.
        fine_tune_layers: "top" (last third of the stages), "all", or a number of stages.
        augment: random resized crop, flip and colour jitter (default: on when fine-tuning;
            head-only training computes features once, so it cannot augment).
        augment_views: fine-tuning the top only: versions of each training image (the
            first unaugmented) whose frozen-bottom feature maps are computed once.
        image_size: training resolution (default: the backbone's own); exported files take it.
        show_progress: progress lines and bars on standard error.
    """

    model: str = DEFAULT_MODEL
    epochs: int | None = None
    head_epochs: int = 40
    batch_size: int | None = None
    lr: float = 1e-3
    fine_tune_lr: float = 3e-4
    weight_decay: float = 1e-4
    dropout: float = 0.2
    hidden_units: int = 0
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    patience: int = 8
    class_weights: bool = True
    seed: int = 0
    fine_tune: bool = False
    fine_tune_layers: str | int = "top"
    augment: bool | None = None
    augment_views: int = 2
    image_size: int | None = None
    show_progress: bool = True

    def resolved(self) -> TrainOptions:
        """A copy with every ``None`` default filled in for the mode, and the settings checked.

        Returns:
            The resolved options.

        Raises:
            TrainingError: a setting out of range, or augmentation without fine-tuning.
            UnknownModelError: ``model`` is not a zoo model.
        """
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
