"""The embedder of a custom-trained model (litecls.training.embedder.export_embedder), on a small real run.

A head trained for a few epochs on 40 Fashion-MNIST images leaves the
EfficientNet-Lite0 backbone as it was, so the trained model's embedder must
give the zoo embedder's vectors for the same input tensor (whole images may be
resized differently: each file carries its own resize settings).
"""

from __future__ import annotations

import fashion_mnist  # tests/fashion_mnist.py
import numpy as np
import pytest
from support import require

from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageEmbedder, cosine_similarity

pytestmark = [pytest.mark.train, pytest.mark.slow]


def test_a_trained_models_embedder_is_its_backbones_pooled_features(zoo_cache, zoo_embedding,
                                                                     tmp_path) -> None:
    from litecls.training import ImageFolder, train
    from litecls.training.embedder import export_embedder

    require(fashion_mnist.available(), "Fashion-MNIST missing: apt-get install dataset-fashion-mnist")
    images, labels = fashion_mnist.load("test")
    picks = fashion_mnist.balanced_indices(labels, 10, seed=0)
    picks = picks[np.isin(labels[picks], [0, 1, 7, 8])]
    fashion_mnist.write_folder(images[picks], labels[picks], tmp_path / "data")
    model = train(ImageFolder(tmp_path / "data"), None, cache_dir=zoo_cache, epochs=3, show_progress=False)
    path = export_embedder(model, tmp_path / "custom-embedder.tflite", precision="float32")
    assert path.is_file() and (tmp_path / "custom-embedder.tflite.sha256").is_file()
    photos = [p for p, _ in labelled_imagenet_photos()[:4]]
    with ImageEmbedder.create_from_model_path(str(path)) as ours, \
            ImageEmbedder.create_from_model_path(str(zoo_embedding("efficientnet_lite0", "float32"))) as zoo:
        assert ours.dimension == zoo.dimension == 1280
        for photo in photos:
            tensor = zoo.preprocess(photo)
            assert cosine_similarity(ours.embed_tensors(tensor)[0], zoo.embed_tensors(tensor)[0]) > 0.999
        # Whole images are resized as the trained model's own export says (its metadata).
        assert ours.processing.resize_settings() == model.export_spec().processing.resize_settings()
