"""The per-epoch checkpoint: everything a run needs to resume exactly where it stopped."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from litecls.cache import atomic_write
from litecls.errors import TrainingError

#: Bump when the checkpoint layout changes; an older checkpoint is then refused, not misread.
CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"


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
