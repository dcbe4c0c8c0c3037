"""``POST /v1/embed`` over real HTTP: a real ``litecls serve`` subprocess, zoo embedders, real photos."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from servers import Server

from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageEmbedder, cosine_similarity

KEY = "embed-key-1c9e"

pytestmark = [pytest.mark.serve, pytest.mark.zoo]


@pytest.fixture(scope="module")
def files(zoo_embedding, zoo_model, tmp_path_factory) -> dict[str, Path]:
    """The embedding files (built before the server starts) and a classifier offered as a file."""
    custom = tmp_path_factory.mktemp("models") / "my_classifier.tflite"
    shutil.copyfile(zoo_model("efficientnet_lite0", "float32"), custom)
    return {"int8": zoo_embedding("efficientnet_lite0", "int8"),
            "float32": zoo_embedding("efficientnet_lite0", "float32"), "custom": custom}


@pytest.fixture(scope="module")
def server(files, zoo_cache) -> Iterator[Server]:
    srv = Server("--model", "efficientnet_lite0:int8", "--model", str(files["custom"]), "--threads", "2",
                 cache=zoo_cache, api_key=KEY)
    yield srv
    # Graceful shutdown with embedders loaded: uvicorn re-raises the SIGTERM it caught.
    assert srv.stop() in (0, -signal.SIGTERM), "".join(srv.stderr)


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return [path for path, _ in labelled_imagenet_photos()[:3]]


def _library(path: Path, photo: Path) -> np.ndarray:
    with ImageEmbedder.create_from_model_path(str(path)) as embedder:
        return embedder.embed(photo.read_bytes()).embedding


def test_several_photos_and_a_bad_one(client, files, photos) -> None:
    uploads = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    uploads.insert(1, ("files", ("notes.jpg", b"not a photo", "image/jpeg")))
    answer = client.post("/v1/embed", files=uploads)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "efficientnet_lite0:int8" and body["dimension"] == 1280
    rows = body["results"]
    assert [row["file"] for row in rows] == [photos[0].name, "notes.jpg", *[p.name for p in photos[1:]]]
    assert rows[1] == {"file": "notes.jpg", "error": "notes.jpg: not an image file (unrecognised format)"}
    for row, photo in zip([rows[0], *rows[2:]], photos, strict=True):
        assert row["dimension"] == len(row["embedding"]) == 1280
        assert cosine_similarity(np.array(row["embedding"]), _library(files["int8"], photo)) > 0.99999


def test_options_model_in_the_path_and_a_classifier_file(client, files, photos) -> None:
    body = photos[0].read_bytes()
    unit = client.post("/v1/models/efficientnet_lite0:float32:embed", content=body,
                       params={"l2_normalize": "true"}).json()
    vector = np.array(unit["results"][0]["embedding"])
    assert unit["model"] == "efficientnet_lite0:float32"
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
    assert cosine_similarity(vector, _library(files["float32"], photos[0])) > 0.99999
    quantized = client.post("/v1/embed", content=body,
                            params={"quantize": "true", "model": "efficientnet_lite0:float32"})
    values = np.array(quantized.json()["results"][0]["embedding"])
    assert values.dtype.kind == "i" and values.min() >= -128 and values.max() <= 127
    assert cosine_similarity(values.astype(float), vector) > 0.99
    # A classifier given at start-up embeds with its pooled features: the same as the zoo's float32 embedder.
    custom = client.post("/v1/models/my_classifier:embed", content=body).json()
    assert cosine_similarity(np.array(custom["results"][0]["embedding"]), vector) > 0.99999


def test_errors_are_json_and_the_server_keeps_serving(server, client, photos) -> None:
    assert client.post("/v1/models/no_such_model:embed", content=photos[0].read_bytes()).status_code == 404
    bad = client.post("/v1/embed", content=b"GIF89a broken")
    assert bad.status_code == 422 and "error" in bad.json()
    assert client.post("/v1/embed").status_code == 422
    anonymous = httpx.post(f"{server.url}/v1/embed", content=photos[0].read_bytes())
    assert anonymous.status_code == 401 and anonymous.json()["error"].startswith("missing API key")
    assert client.post("/v1/embed", content=photos[0].read_bytes()).status_code == 200
    metrics = client.get("/metrics").text
    assert 'model="efficientnet_lite0:int8"' in metrics
