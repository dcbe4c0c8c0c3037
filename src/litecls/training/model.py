"""The result of training: evaluate it, export it to .tflite, evaluate the exported files."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from litecls.export.spec import ExportSpec
from litecls.models.registry import get_config
from litecls.processing.config import ProcessingConfig
from litecls.training.data import Dataset, DatasetWarning
from litecls.training.features import FeatureCache, FeatureExtractor, backbone_file
from litecls.training.files import write_file
from litecls.training.head import ClassifierHead, CustomClassifier
from litecls.training.metrics import Evaluation, evaluate_scores
from litecls.training.trainer import EpochRecord, StageResult

#: Training images used to calibrate int8 quantization (spread over the classes).
CALIBRATION_IMAGES = 100
#: A fine-tuned backbone runs in PyTorch for sets up to this size, in LiteRT beyond it
#: (docs/decisions.md, "Training": the conversion costs more than eager mode on fewer).
EAGER_LIMIT = 300


@dataclass
class TrainedModel:
    """A trained classifier: a zoo backbone (frozen or fine-tuned) with a new head.

    :meth:`evaluate` scores it on a labelled set, :meth:`export` writes a
    ``.tflite`` with metadata and labels, :meth:`evaluate_tflite` scores an
    exported file the way an app would run it. Made by :func:`train`.

    Attributes:
        classes: the class names, in output order.
        backbone_name: the zoo backbone.
        preprocessing: how images become the network's input.
        head: the new classification head.
        backbone: the fine-tuned backbone; ``None`` when it stayed frozen (the zoo weights).
        train_data: the training set (int8 calibration images come from it).
        history: one record per epoch.
        stages: how each stage ended.
        timings: seconds per phase ("feature_extraction", "training", ...).
        options: the resolved training options.
        cache: the cache folder of the backbone files.
        feature_cache: where computed features are kept, if anywhere.
    """

    classes: list[str]
    backbone_name: str
    preprocessing: ProcessingConfig
    head: ClassifierHead
    #: The fine-tuned backbone; ``None`` when it stayed frozen (the zoo weights).
    backbone: torch.nn.Module | None
    train_data: Dataset
    history: list[EpochRecord] = field(default_factory=list)
    stages: dict[str, StageResult] = field(default_factory=dict)
    #: Seconds per phase ("feature_extraction", "training", ...).
    timings: dict[str, float] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    cache: str | os.PathLike | None = None
    feature_cache: FeatureCache | None = None
    _extractor: FeatureExtractor | None = field(default=None, repr=False)

    @property
    def fine_tuned(self) -> bool:
        """True when backbone layers were trained too."""
        return self.backbone is not None

    @property
    def image_size(self) -> int:
        """Input size in pixels (square)."""
        return self.preprocessing.input_size[0]

    # -- the network -------------------------------------------------------------------------

    def network(self) -> CustomClassifier:
        """Backbone + head as one PyTorch module, in eval mode.

        Returns:
            The network (NCHW normalised input -> logits).
        """
        if self.backbone is not None:
            backbone = self.backbone
        else:
            from litecls.training.features import create_backbone

            backbone = create_backbone(self.backbone_name, self.image_size)
        return CustomClassifier(backbone, self.head).eval()

    def extractor(self) -> FeatureExtractor:
        """The LiteRT feature extractor of this model's backbone (converted once if fine-tuned).

        Returns:
            The extractor.

        Raises:
            CacheDirError: the frozen backbone's file cannot be cached.
        """
        if self._extractor is None:
            if self.backbone is None:
                model: str | os.PathLike | bytes = backbone_file(self.backbone_name, self.image_size,
                                                                 self.cache, show_progress=False)
            else:
                from litecls.training.features import convert_backbone

                model = convert_backbone(self.backbone, self.backbone_name, self.image_size)
            self._extractor = FeatureExtractor(model, self.preprocessing)
        return self._extractor

    def reset_extractor(self) -> None:
        """Forget the LiteRT extractor (after the backbone changed)."""
        self._extractor = None

    def features(self, dataset: Dataset, desc: str = "features",
                 show_progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Backbone features of the images of ``dataset`` that decode (others are warned about).

        Args:
            dataset: the images.
            desc: the progress bar's label (and the feature cache's key).
            show_progress: draw a progress bar.

        Returns:
            ``(features, labels)`` of the images that decoded.
        """
        if self.backbone is not None and self._extractor is None and len(dataset) <= EAGER_LIMIT:
            return self._eager_features(dataset), dataset.labels
        extractor = self.extractor()
        if self.feature_cache is not None and self.backbone is None:
            feats, failed = self.feature_cache.get_or_extract(dataset.paths, extractor, desc, show_progress)
        else:
            feats, failed = extractor.extract(dataset.paths, desc, show_progress)
        labels = dataset.labels
        if failed:
            warnings.warn(f"{desc}: skipped {len(failed)} image(s) that failed to decode:\n  "
                          + "\n  ".join(r for _, r in failed), DatasetWarning, stacklevel=2)
            keep = np.ones(len(labels), bool)
            keep[[i for i, _ in failed]] = False
            feats, labels = feats[keep], labels[keep]
        return feats, labels

    def _eager_features(self, dataset: Dataset) -> np.ndarray:
        """Features from the PyTorch backbone (a fine-tuned one, on a small set)."""
        from litecls.training.augment import to_tensor

        config = get_config(self.backbone_name)
        out = []
        self.backbone.eval()
        with torch.no_grad():
            for i in range(0, len(dataset), 32):
                pixels = np.stack([self.preprocessing.prepare(p) for p in dataset.paths[i:i + 32]])
                out.append(self.backbone.forward_features(to_tensor(pixels, config.mean, config.std)).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.head.in_features), np.float32)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, dataset: Dataset, show_progress: bool = True) -> Evaluation:
        """Top-1/top-5 accuracy, per-class P/R/F1 and confusion matrix on ``dataset``.

        The backbone runs in LiteRT (float32), the head in PyTorch: the same
        network as the float32 export.

        Args:
            dataset: labelled images of this model's classes.
            show_progress: draw a progress bar.

        Returns:
            The figures.
        """
        started = time.perf_counter()
        feats, labels = self.features(dataset, desc=dataset.name, show_progress=show_progress)
        self.head.eval()
        with torch.no_grad():
            logits = self.head(torch.from_numpy(feats))
            loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))
        return evaluate_scores(torch.softmax(logits, 1).numpy(), labels, self.classes, loss=loss,
                               seconds=time.perf_counter() - started)

    def evaluate_tflite(self, path: str | os.PathLike, dataset: Dataset, num_threads: int = 2,
                        show_progress: bool = True) -> Evaluation:
        """Evaluate an exported ``.tflite`` with :class:`litecls.tasks.ImageClassifier`, as an app would.

        The images run through :func:`litecls.evaluation.accuracy.evaluate`;
        images that fail to decode are left out.

        Args:
            path: the exported file.
            dataset: labelled images of this model's classes.
            num_threads: interpreter threads.
            show_progress: draw a progress bar on standard error.

        Returns:
            Top-1/top-5 accuracy, per-class figures, confusion matrix and loss.

        Raises:
            ValueError: the file's labels are not this model's classes.
            ModelFileError: the file cannot be loaded.
        """
        from litecls.evaluation.accuracy import evaluate
        from litecls.evaluation.metrics import log_loss
        from litecls.progress import ProgressBar
        from litecls.tasks import ImageClassifier, ImageClassifierOptions

        started = time.perf_counter()
        options = ImageClassifierOptions(model_path=Path(path), max_results=-1, num_threads=num_threads)
        bar = ProgressBar() if show_progress else None
        with ImageClassifier.create_from_options(options) as classifier:
            if classifier.labels != self.classes:
                raise ValueError(f"{path}: its labels are not this model's classes")
            result = evaluate(classifier, dataset.to_labelled(), workers=2,
                              progress=bar.update if bar else None, all_scores=True)
        if bar is not None:
            bar.close()
        probs, labels = result.score_matrix()
        return evaluate_scores(probs, labels, self.classes, loss=log_loss(probs, labels),
                               seconds=time.perf_counter() - started)

    # -- export -------------------------------------------------------------------------------

    def export_spec(self) -> ExportSpec:
        """Metadata of the exported file: the new labels, the backbone's normalisation, a custom name.

        Returns:
            The export spec.
        """
        config = get_config(self.backbone_name)
        shown = ", ".join(self.classes[:8]) + (", ..." if len(self.classes) > 8 else "")
        how = "fine-tuned" if self.fine_tuned else "frozen"
        return ExportSpec(
            name=f"Custom classifier ({config.display_name})", labels=list(self.classes),
            processing=self.preprocessing,
            description=(f"Custom image classifier for {len(self.classes)} classes ({shown}), "
                         f"trained with litecls: a new head on a {how} {config.display_name} "
                         f"backbone pretrained on ImageNet; {self.image_size} px input, centre square."),
            version="1", author="litecls train",
            license=f"backbone weights: {config.weights_license}")

    def calibration_images(self, count: int = CALIBRATION_IMAGES) -> list[np.ndarray]:
        """Training images for int8 calibration (round-robin over the classes, fixed order).

        Args:
            count: at most this many.

        Returns:
            uint8 arrays of shape 1xHxWx3 (images that no longer decode are left out).
        """
        data = self.train_data
        per_class = [list(np.flatnonzero(data.labels == c)) for c in range(len(self.classes))]
        picks: list[int] = []
        while len(picks) < min(count, len(data)):
            for members in per_class:
                if members and len(picks) < count:
                    picks.append(members.pop(0))
        images = []
        for i in picks:
            try:
                images.append(self.preprocessing.prepare(data.paths[i])[None])
            except Exception:  # a file that vanished or broke since loading: calibrate without it
                continue
        return images

    def export_bytes(self, precision: str = "int8") -> bytes:
        """The ``.tflite`` bytes at ``precision``.

        Args:
            precision: "float32", "float16", "dynamic" or "int8".

        Returns:
            The file's bytes, with metadata.

        Raises:
            ExportError: an unknown precision, or a conversion that does not check out.
        """
        from litecls.export import export_tflite

        return export_tflite(self.network(), self.export_spec(), precision,
                             calibration=self.calibration_images)

    def export(self, path: str | os.PathLike, precision: str = "int8",
               float_model: bytes | None = None) -> Path:
        """Write the ``.tflite`` at ``precision`` (and its ``.sha256`` sidecar).

        Args:
            path: a file, or a folder (then ``model-PRECISION.tflite`` in it).
            precision: "float32", "float16", "dynamic" or "int8".
            float_model: already exported float32 bytes to reuse (metadata is
                stripped and rewritten), saving a second conversion.

        Returns:
            The written file.

        Raises:
            ExportError: an unknown precision, or a conversion that does not check out.
            OSError: the file cannot be written.
        """
        from litecls.export import export_tflite
        from litecls.metadata import strip_metadata

        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = path / f"model-{precision}.tflite"
        base = strip_metadata(float_model) if float_model is not None else None
        data = export_tflite(None if base is not None else self.network(), self.export_spec(), precision,
                             calibration=self.calibration_images, float_model=base)
        from litecls.runtime.integrity import write_sidecar

        written = write_file(path, data)
        write_sidecar(written, data)  # NAME.tflite.sha256, checked whenever litecls loads the file
        return written

    def save_labels(self, path: str | os.PathLike) -> Path:
        """Write ``labels.txt``: one class name per line, in output order.

        Args:
            path: the file.

        Returns:
            The written file.

        Raises:
            OSError: the file cannot be written.
        """
        return write_file(path, ("\n".join(self.classes) + "\n").encode())
