"""The zoo's int8 calibration images: mosaics of the calibration photos."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from litecls.models import get_config
from litecls.models.zoo import CALIBRATION_GRID, calibration_images, mosaic
from litecls.samples import calibration_photos

pytestmark = pytest.mark.zoo


def test_mosaic_tiles_photos_in_order_without_borders():
    photos = [Image.new("RGB", (32, 32), (i, 2 * i, 3 * i)) for i in range(1, 6)]
    image = mosaic(photos, 224, 3, first=4)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    # Edges at 0, 75, 149, 224: tiles of 75, 74 and 75 pixels, nothing left black.
    colours = [tuple(image[y, x]) for y in (0, 100, 223) for x in (0, 100, 223)]
    assert colours == [tuple(photos[(4 + j) % 5].getpixel((0, 0))) for j in range(9)]
    assert tuple(image[74, 74]) == colours[0] and tuple(image[75, 75]) == colours[4]
    assert (image.reshape(-1, 3).max(axis=1) > 0).all()


def test_calibration_images_use_every_photo_equally_often():
    config = get_config("efficientnet_lite1")
    photos = calibration_photos()
    images = calibration_images(config)
    assert len(images) == len(photos) == 40
    assert all(i.shape == (1, 240, 240, 3) and i.dtype == np.uint8 for i in images)
    # Match every tile back to the photo it shows: each photo appears in 9 mosaics.
    side = 240 // CALIBRATION_GRID
    thumbs = []
    for path in photos:
        with Image.open(path) as photo:
            thumbs.append(np.asarray(photo.convert("RGB").resize((side, side), Image.BICUBIC), np.float32))
    shown = Counter()
    for image in images:
        for row in range(CALIBRATION_GRID):
            for col in range(CALIBRATION_GRID):
                tile = image[0, row * side:(row + 1) * side, col * side:(col + 1) * side].astype(np.float32)
                shown[int(np.argmin([np.abs(tile - t).mean() for t in thumbs]))] += 1
    assert shown == Counter({i: CALIBRATION_GRID ** 2 for i in range(40)})
