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
import io
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from litecls.errors import TrainingError
from litecls.training.head import lr_factor

#: Bump when the checkpoint layout changes; an older checkpoint is then refused, not misread.
CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"

Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]
Validate = Callable[[], tuple[float, float]]


@dataclass
class EpochRecord:
    """What one epoch did: training loss/accuracy (with dropout on), validation loss/accuracy."""

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


class Checkpoint:
    """``checkpoint.pt`` in a folder, written atomically after every epoch (nowhere if folder is None)."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None

    @property
    def path(self) -> Path | None:
        """The checkpoint file, or ``None`` when checkpoints are off."""
        return self.folder / CHECKPOINT_NAME if self.folder is not None else None

    def exists(self) -> bool:
        """True when a checkpoint file is there."""
        return self.path is not None and self.path.is_file()

    def save(self, state: dict) -> None:
        """Write ``state`` (never a half-written file: temporary file + rename)."""
        if self.path is None:
            return
        from litecls.models.zoo import atomic_write

        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
        atomic_write(self.path, buffer.getvalue())

    def load(self, fingerprint: dict) -> dict | None:
        """The saved state, if any; a checkpoint made with other settings is an error."""
        if not self.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file: say which
            raise TrainingError(f"{self.path}: cannot read checkpoint: {exc}") from None
        if state.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(f"{self.path}: checkpoint format {state.get('format')} is not "
                                f"{CHECKPOINT_FORMAT}; start again without --resume")
        saved = state.get("fingerprint", {})
        changed = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
        if changed:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed)
            raise TrainingError(f"{self.path} was made with other settings ({detail}); resume with the "
                                "same data and settings, or start again without --resume")
        return state


def _seed(seed: int, stage: str, epoch: int) -> int:
    return (seed * 1_000_003 + (17 if stage == "head" else 31) * 1009 + epoch) % (2**63)


def epoch_generator(seed: int, stage: str, epoch: int) -> torch.Generator:
    """A random generator for shuffling and augmentation in ``epoch`` of ``stage``."""
    return torch.Generator().manual_seed(_seed(seed, stage, epoch))


def _progress(total: int, desc: str, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", disable=not show, file=sys.stderr,
                leave=True, dynamic_ncols=True, mininterval=0.5)


def run_stage(model: nn.Module, stage: Stage, batches: Batches, validate: Validate | None,
              train_mode: Callable[[bool], None], checkpoint: Checkpoint, fingerprint: dict,
              history: list[EpochRecord], resume: dict | None = None, show_progress: bool = True,
              on_epoch_end: Iterable[Callable[[EpochRecord], None]] = ()) -> StageResult:
    """Train ``model`` for ``stage``; on return it holds the weights of the best validation epoch.

    ``batches(epoch)`` yields ``(inputs, labels)``; ``validate()`` returns
    ``(loss, accuracy)`` on the validation set (without it there is no early
    stopping and the last epoch is kept). ``history`` is appended to. The
    checkpoint after each epoch holds ``history`` too, so ``resume`` (a
    loaded checkpoint of this stage) restores everything.
    """
    started = time.perf_counter()
    optimizer = torch.optim.AdamW(stage.param_groups, weight_decay=stage.weight_decay)
    for group in optimizer.param_groups:
        group["peak_lr"] = group["lr"]
    criterion = nn.CrossEntropyLoss(weight=stage.class_weights, label_smoothing=stage.label_smoothing)
    total_steps = stage.epochs * stage.steps_per_epoch
    warmup_steps = max(1, round(stage.warmup_epochs * stage.steps_per_epoch))

    best_loss, best_state, best_epoch, bad_epochs, start = math.inf, None, 0, 0, 1
    result = StageResult(best_epoch=0, best_val_loss=None, stopped_early=False, epochs_run=0)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        best_loss, best_epoch = resume["best_val_loss"], resume["best_epoch"]
        best_state, bad_epochs = resume["best_state"], resume["bad_epochs"]
        start = resume["epoch"] + 1
        result.resumed_from = resume["epoch"]
        result.stopped_early = resume.get("stopped_early", False)
        if resume.get("finished"):
            start = stage.epochs + 1  # nothing left to do

    def save(epoch: int, finished: bool) -> None:
        checkpoint.save({
            "fingerprint": fingerprint, "stage": stage.name, "epoch": epoch, "finished": finished,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "best_state": best_state, "best_val_loss": best_loss, "best_epoch": best_epoch,
            "bad_epochs": bad_epochs, "stopped_early": result.stopped_early,
            "history": [asdict(r) for r in history]})

    epoch = start - 1
    for epoch in range(start, stage.epochs + 1):
        epoch_started = time.perf_counter()
        torch.manual_seed(_seed(stage.seed, stage.name, epoch))  # dropout
        train_mode(True)
        loss_sum, correct, seen, step = 0.0, 0, 0, (epoch - 1) * stage.steps_per_epoch
        bar = _progress(stage.steps_per_epoch, f"{stage.name} epoch {epoch}/{stage.epochs}", show_progress)
        with bar:
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
        record = EpochRecord(stage.name, epoch, loss_sum / max(seen, 1), correct / max(seen, 1),
                             val_loss, val_acc, optimizer.param_groups[-1]["lr"],
                             time.perf_counter() - epoch_started)
        history.append(record)
        result.epochs_run += 1
        monitored = val_loss if val_loss is not None else -epoch  # no validation: keep the last epoch
        if monitored < best_loss - stage.min_delta:
            best_loss, best_epoch, bad_epochs = monitored, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        stop = validate is not None and bad_epochs >= stage.patience
        result.stopped_early = stop
        save(epoch, finished=stop or epoch == stage.epochs)
        for callback in on_epoch_end:
            callback(record)
        if stop:
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    train_mode(False)
    result.best_epoch = best_epoch
    result.best_val_loss = best_loss if validate is not None and math.isfinite(best_loss) else None
    result.history = [r for r in history if r.stage == stage.name]
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with ``count`` intra-op threads. A linear head's small matrices step in ~2 ms on one
    thread but ~70 ms on two when the other core is busy (the threads wait on each other)."""
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
        order = torch.randperm(len(labels), generator=epoch_generator(seed, stage, epoch))
        for i in range(0, len(order), batch_size):
            index = order[i:i + batch_size]
            yield inputs[index], labels[index]

    return batches
