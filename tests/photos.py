"""Real photos prepared for a zoo model, shared by the tests."""

from __future__ import annotations

import numpy as np

from litecls.models import get_config
from litecls.processing.image import prepare_image
from litecls.samples import demo_photos, labelled_imagenet_photos


def model_inputs(name: str, paths: list) -> np.ndarray:
    """uint8 NxHxWx3 images resized and cropped as zoo model ``name`` expects."""
    config = get_config(name)
    size = (config.input_size, config.input_size)
    return np.stack([prepare_image(p, size, crop_pct=config.crop_pct, interpolation=config.interpolation)
                     for p in paths])


def imagenet_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The 20 labelled ImageNet photos for model ``name`` and their class indices."""
    photos = labelled_imagenet_photos()
    return model_inputs(name, [p for p, _ in photos]), np.array([label for _, label in photos])


def agreement_set(name: str) -> np.ndarray:
    """58 real-photo inputs for float-vs-int8 agreement: 29 photos, each as is and mirrored.

    The 20 labelled ImageNet photos and the 9 scikit-image/matplotlib photos;
    none is among the calibration photos (litecls.samples.calibration_photos).
    """
    photos = [p for p, _ in labelled_imagenet_photos()] + demo_photos()
    images = model_inputs(name, photos)
    return np.concatenate([images, images[:, :, ::-1]])
