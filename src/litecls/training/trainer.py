"""The epoch loop shared by head training and fine-tuning.

One loop does warm-up + cosine learning rates, label smoothing and class
weights, a progress bar per epoch, validation, early stopping on validation
loss (the best weights are restored at the end), a checkpoint after every
epoch, and resuming from it. Every epoch seeds its own random numbers from
``(seed, stage, epoch)``, so a run resumed after an interruption continues
exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from litecls.training.checkpoint import Checkpoint
from litecls.training.data import Dataset
from litecls.training.head import lr_factor
from litecls.training.options import TrainOptions

Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]
Validate = Callable[[], tuple[float, float]]


@dataclass
class EpochRecord:
    """What one epoch did.

    Attributes:
        stage: "head" or "fine-tune".
        epoch: the epoch, from 1.
        loss: training loss (with dropout on).
        accuracy: training accuracy.
        val_loss: validation loss, or ``None`` without a validation set.
        val_accuracy: validation accuracy, or ``None``.
        lr: the last learning rate of the epoch (the head's group).
        seconds: wall time.
    """

    stage: str
    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class Stage:
    """Settings of one training stage ("head" or "fine-tune")."""

    name: str
    epochs: int
    #: ``[{"params": [...], "lr": peak_lr}, ...]``: several groups for discriminative learning rates.
    param_groups: list[dict]
    steps_per_epoch: int
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    class_weights: torch.Tensor | None = None
    warmup_epochs: float = 1.0
    patience: int = 5
    seed: int = 0
    min_delta: float = 1e-4


@dataclass
class StageResult:
    """How a stage ended."""

    best_epoch: int
    best_val_loss: float | None
    stopped_early: bool
    epochs_run: int
    seconds: float = 0.0
    resumed_from: int = 0
    history: list[EpochRecord] = field(default_factory=list)


def _seed(seed: int, stage: str, epoch: int) -> int:
    return (seed * 1_000_003 + (17 if stage == "head" else 31) * 1009 + epoch) % (2**63)


def epoch_generator(seed: int, stage: str, epoch: int) -> torch.Generator:
    """A random generator for shuffling and augmentation in ``epoch`` of ``stage``.

    Args:
        seed: the run's seed.
        stage: "head" or "fine-tune".
        epoch: the epoch, from 1.

    Returns:
        A seeded ``torch.Generator``.
    """
    return torch.Generator().manual_seed(_seed(seed, stage, epoch))


def shuffled_batches(count: int, batch_size: int, seed: int, stage: str, epoch: int) -> list[torch.Tensor]:
    """The indices ``0..count-1`` shuffled for ``epoch`` of ``stage`` and cut into batches.

    Args:
        count: items in the set.
        batch_size: items a batch (the last batch may be smaller).
        seed: the run's seed.
        stage: "head" or "fine-tune".
        epoch: the epoch, from 1.

    Returns:
        One index tensor a batch; the same arguments give the same batches.
    """
    order = torch.randperm(count, generator=epoch_generator(seed, stage, epoch))
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


@dataclass
class RunContext:
    """What every stage of one training run shares: the settings, the data, the checkpoint, the log.

    Args:
        options: the resolved settings.
        train_data: the training set.
        val_data: the validation set, if any.
        checkpoint: where each epoch's checkpoint goes.
        fingerprint: what a checkpoint must agree with to be resumed.
        history: every epoch's record so far (appended to).
        class_weights: loss weight of each class, or ``None``.
        state: the loaded checkpoint when resuming (of whichever stage).
        on_epoch_end: callbacks given each :class:`EpochRecord`.
    """

    options: TrainOptions
    train_data: Dataset
    val_data: Dataset | None
    checkpoint: Checkpoint
    fingerprint: dict
    history: list[EpochRecord]
    class_weights: torch.Tensor | None = None
    state: dict | None = None
    on_epoch_end: tuple[Callable[[EpochRecord], None], ...] = ()

    @property
    def show(self) -> bool:
        """Whether progress is shown."""
        return self.options.show_progress

    def resume_state(self, stage: str) -> dict | None:
        """The loaded checkpoint if it was saved in ``stage``, else ``None``.

        Args:
            stage: "head" or "fine-tune".

        Returns:
            The checkpoint's state, or ``None``.
        """
        return self.state if self.state is not None and self.state["stage"] == stage else None

    def stage(self, name: str, epochs: int, param_groups: list[dict], steps_per_epoch: int) -> Stage:
        """A :class:`Stage` with this run's shared settings (weight decay, smoothing, warm-up...).

        Args:
            name: "head" or "fine-tune".
            epochs: epochs of the stage.
            param_groups: the optimizer's parameter groups with their peak learning rates.
            steps_per_epoch: batches an epoch.

        Returns:
            The stage's settings.
        """
        o = self.options
        return Stage(name, epochs, param_groups, steps_per_epoch=steps_per_epoch, weight_decay=o.weight_decay,
                     label_smoothing=o.label_smoothing, class_weights=self.class_weights,
                     warmup_epochs=o.warmup_epochs, patience=o.patience, seed=o.seed)


def validator(network: nn.Module, inputs: Callable[[int, int], torch.Tensor], count: int,
              labels: torch.Tensor, weights: torch.Tensor | None, chunk: int = 64) -> Validate:
    """A ``validate()`` returning the validation ``(loss, accuracy)`` of ``network``.

    Args:
        network: the model (in eval mode when called).
        inputs: ``inputs(start, stop)`` gives the validation inputs ``start:stop``.
        count: validation items.
        labels: their true classes.
        weights: loss weight of each class, or ``None``.
        chunk: items a forward pass.

    Returns:
        The function (no arguments).
    """
    def validate() -> tuple[float, float]:
        with torch.no_grad():
            starts = range(0, count, max(chunk, 1))
            logits = torch.cat([network(inputs(i, min(i + chunk, count))) for i in starts])
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
        return float(loss), float((logits.argmax(1) == labels).float().mean())

    return validate


@dataclass
class _Best:
    """The best epoch so far (lowest validation loss) and the epochs since it."""

    loss: float = math.inf
    state: dict | None = None
    epoch: int = 0
    bad_epochs: int = 0


def _optimizer(stage: Stage) -> torch.optim.Optimizer:
    optimizer = torch.optim.AdamW(stage.param_groups, weight_decay=stage.weight_decay)
    for group in optimizer.param_groups:
        group["peak_lr"] = group["lr"]
    return optimizer


def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, stage: Stage, resume: dict | None,
             best: _Best, result: StageResult) -> int:
    """Load a checkpoint of this stage into ``model``, ``optimizer``, ``best``; return the epoch to start."""
    if resume is None:
        return 1
    model.load_state_dict(resume["model"])
    optimizer.load_state_dict(resume["optimizer"])
    best.loss, best.epoch = resume["best_val_loss"], resume["best_epoch"]
    best.state, best.bad_epochs = resume["best_state"], resume["bad_epochs"]
    result.resumed_from = resume["epoch"]
    result.stopped_early = resume.get("stopped_early", False)
    return stage.epochs + 1 if resume.get("finished") else resume["epoch"] + 1


def _train_epoch(model: nn.Module, stage: Stage, batches: Batches, validate: Validate | None,
                 train_mode: Callable[[bool], None], optimizer: torch.optim.Optimizer,
                 criterion: nn.Module, epoch: int, show: bool) -> EpochRecord:
    """One epoch: the batches with their learning rates, then validation, under one progress bar."""
    from litecls.progress import batch_bar

    started = time.perf_counter()
    torch.manual_seed(_seed(stage.seed, stage.name, epoch))  # dropout
    train_mode(True)
    total_steps = stage.epochs * stage.steps_per_epoch
    warmup_steps = max(1, round(stage.warmup_epochs * stage.steps_per_epoch))
    loss_sum, correct, seen, step = 0.0, 0, 0, (epoch - 1) * stage.steps_per_epoch
    with batch_bar(stage.steps_per_epoch, f"{stage.name} epoch {epoch}/{stage.epochs}", show) as bar:
        for inputs, labels in batches(epoch):
            factor = lr_factor(step, total_steps, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = group["peak_lr"] * factor
            logits = model(inputs)
            loss = criterion(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        train_mode(False)
        val_loss, val_acc = validate() if validate is not None else (None, None)
        postfix = {"loss": f"{loss_sum / max(seen, 1):.4f}", "acc": f"{correct / max(seen, 1):.4f}"}
        if val_loss is not None:
            postfix.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.4f}")
        bar.set_postfix(postfix)
    return EpochRecord(stage.name, epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                       optimizer.param_groups[-1]["lr"], time.perf_counter() - started)


def run_stage(model: nn.Module, stage: Stage, batches: Batches, validate: Validate | None,
              train_mode: Callable[[bool], None], run: RunContext) -> StageResult:
    """Train ``model`` for ``stage``; on return it holds the weights of the best validation epoch.

    The checkpoint after each epoch holds ``run.history`` too, so resuming
    (``run.state`` saved in this stage) restores everything.

    Args:
        model: the network; its trainable parameters are those of ``stage.param_groups``.
        stage: the stage's settings.
        batches: ``batches(epoch)`` yields ``(inputs, labels)``.
        validate: returns the validation ``(loss, accuracy)``; without it there
            is no early stopping and the last epoch is kept.
        train_mode: switches the network between training and evaluation.
        run: the run's settings, checkpoint, history and callbacks.

    Returns:
        How the stage ended; ``run.history`` has its epochs appended.
    """
    started = time.perf_counter()
    optimizer = _optimizer(stage)
    criterion = nn.CrossEntropyLoss(weight=stage.class_weights, label_smoothing=stage.label_smoothing)
    best = _Best()
    result = StageResult(best_epoch=0, best_val_loss=None, stopped_early=False, epochs_run=0)
    start = _restore(model, optimizer, stage, run.resume_state(stage.name), best, result)
    for epoch in range(start, stage.epochs + 1):
        record = _train_epoch(model, stage, batches, validate, train_mode, optimizer, criterion, epoch,
                              run.show)
        run.history.append(record)
        result.epochs_run += 1
        monitored = record.val_loss if record.val_loss is not None else -epoch  # no validation: keep the last
        if monitored < best.loss - stage.min_delta:
            best.loss, best.epoch, best.bad_epochs = monitored, epoch, 0
            best.state = copy.deepcopy(model.state_dict())
        else:
            best.bad_epochs += 1
        result.stopped_early = validate is not None and best.bad_epochs >= stage.patience
        run.checkpoint.save({
            "fingerprint": run.fingerprint, "stage": stage.name, "epoch": epoch,
            "finished": result.stopped_early or epoch == stage.epochs,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "best_state": best.state, "best_val_loss": best.loss, "best_epoch": best.epoch,
            "bad_epochs": best.bad_epochs, "stopped_early": result.stopped_early,
            "history": [asdict(r) for r in run.history]})
        for callback in run.on_epoch_end:
            callback(record)
        if result.stopped_early:
            break
    if best.state is not None:
        model.load_state_dict(best.state)
    train_mode(False)
    result.best_epoch = best.epoch
    result.best_val_loss = best.loss if validate is not None and math.isfinite(best.loss) else None
    result.history = [r for r in run.history if r.stage == stage.name]
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` intra-op threads meanwhile (docs/decisions.md, "Training": one for the head).

    Args:
        count: PyTorch intra-op threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tensor_batches(inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int,
                   stage: str) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """``batches(epoch)`` over in-memory tensors, shuffled reproducibly per epoch."""

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in shuffled_batches(len(labels), batch_size, seed, stage, epoch):
            yield inputs[index], labels[index]

    return batches
