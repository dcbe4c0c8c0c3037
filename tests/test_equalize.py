"""Residual-stream equalization on the real pretrained networks and real photos."""

from __future__ import annotations

import pytest
import torch
from photos import imagenet_set

from litecls.export.equalize import equalize_residual_streams, stream_ranges
from litecls.models import create_model, get_config
from litecls.models.zoo import calibration_images, torch_inputs

pytestmark = pytest.mark.zoo

# Blocks per network (MobileNetV2 paper table 2; EfficientNet-B0 stages, depth 1.0).
BLOCKS = {"mobilenet_v2": 17, "efficientnet_lite0": 16}
# One stream per stage (the first block of a stage has no residual connection).
STAGES = {"mobilenet_v2": 7, "efficientnet_lite0": 7}


def _photos(name: str) -> list[torch.Tensor]:
    images, _ = imagenet_set(name)
    return torch_inputs(get_config(name), [images[i:i + 4] for i in range(0, len(images), 4)])


def _spread(ranges: list[torch.Tensor]) -> list[float]:
    """Widest over narrowest channel of each stream."""
    return [float(r.max() / r.min()) for r in ranges]


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_streams_cover_every_block(name):
    streams = create_model(name, pretrained=False).residual_streams()
    assert len(streams) == STAGES[name]
    # Every block but the first reads a stream through its expansion, and the head reads the last.
    assert sum(len(s.consumers) for s in streams) == BLOCKS[name]
    assert sum(len(s.producers) for s in streams) == BLOCKS[name]
    assert all(c.kernel_size == (1, 1) and c.groups == 1 for s in streams for c in s.consumers)


@pytest.mark.slow  # a minute or two a model on 2 shared cores
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_equalization_keeps_the_output_and_evens_the_ranges(name):
    model = create_model(name).eval()
    photos = _photos(name)
    with torch.no_grad():
        before = torch.cat([model(x) for x in photos])
    spread = _spread(stream_ranges(model, photos))

    equalize_residual_streams(model, photos, strength=0.5)

    with torch.no_grad():
        after = torch.cat([model(x) for x in photos])
    assert (after - before).abs().max() < 1e-3 * before.abs().max()
    assert torch.equal(after.argmax(1), before.argmax(1))
    # Strength 0.5 takes the square root of each stream's spread (same photos, same ranges).
    for old, new in zip(spread, _spread(stream_ranges(model, photos)), strict=True):
        assert new == pytest.approx(min(old, 1e3) ** 0.5, rel=1e-3) or old > 1e3


@pytest.mark.slow  # a minute or two a model on 2 shared cores
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_equalized_where_streams_are_uneven(name):
    """A model is equalized exactly when a stream's widest channel is over 10x its narrowest
    on the calibration images. On the mosaics every zoo model stays under 3.5x (on one
    blown-up thumbnail per image MobileNetV2 showed 15x and was equalized)."""
    config = get_config(name)
    spread = _spread(stream_ranges(create_model(name).eval(),
                                   torch_inputs(config, calibration_images(config))))
    assert (max(spread) > 10) == (config.int8_equalization > 0)


def test_equalization_strength_is_checked():
    model = create_model("mobilenet_v2", pretrained=False)
    with pytest.raises(ValueError, match="strength"):
        equalize_residual_streams(model, [torch.zeros(1, 3, 224, 224)], strength=0)
