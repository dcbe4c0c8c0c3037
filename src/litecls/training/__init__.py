"""Customize: transfer learning to new classes from folders of images (the TFLite Model Maker flow).

::

    from litecls.training import ImageFolder, train

    data = ImageFolder("flowers/")                       # one sub-folder of images per label
    train_set, val_set, test_set = data.split((0.8, 0.1, 0.1), seed=0)
    model = train(train_set, val_set, model="efficientnet_lite0", epochs=40)
    print(model.evaluate(test_set).summary())
    model.export("flowers-int8.tflite", precision="int8")   # uint8 in/out, metadata + labels

The backbone's features are computed once with LiteRT and only the new head
trains (milliseconds an epoch); ``fine_tune=True`` also trains the top of
the backbone on augmented images.
"""

from __future__ import annotations

from litecls.extras import require_extra

require_extra("train")  # before the imports below, which need PyTorch

from litecls.errors import DatasetError, TrainingError  # noqa: E402
from litecls.training.api import TrainOptions, train  # noqa: E402
from litecls.training.data import Dataset, DatasetWarning  # noqa: E402
from litecls.training.folders import ImageFolder, is_split_root, load_splits  # noqa: E402
from litecls.training.metrics import Evaluation  # noqa: E402
from litecls.training.model import TrainedModel  # noqa: E402
from litecls.training.trainer import EpochRecord  # noqa: E402

__all__ = ["Dataset", "DatasetError", "DatasetWarning", "EpochRecord", "Evaluation", "ImageFolder",
           "TrainOptions", "TrainedModel", "TrainingError", "is_split_root", "load_splits", "train"]
