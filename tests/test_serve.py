"""``litecls serve`` over real HTTP: a real server subprocess on a loopback port, real models and photos."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from photos import more_photos
from servers import Server

from litecls.cli.main import main
from litecls.processing.image import load_image
from litecls.samples import labelled_imagenet_photos
from litecls.serve.batching import chunk_sizes
from litecls.tasks import ClassificationResult, ImageClassifier, ImageClassifierOptions

ZooModel = Callable[[str, str], Path]
KEY = "test-key-7f3a"
#: Quantized scores come in 1/256 steps; a batched or multi-threaded invoke may move one by a step.
SCORE_TOL = 1 / 256 + 1e-6
#: Exit status after SIGTERM: uvicorn shuts down gracefully, then re-raises the signal it caught.
STOPPED = (0, -signal.SIGTERM)

pytestmark = [pytest.mark.serve, pytest.mark.zoo]


@pytest.fixture(scope="module")
def models(zoo_model: ZooModel) -> dict[str, Path]:
    """The zoo files the server will load (built before it starts, so it never builds)."""
    return {"efficientnet_lite0:int8": zoo_model("efficientnet_lite0", "int8"),
            "mobilenet_v2:float32": zoo_model("mobilenet_v2", "float32"),
            "efficientnet_lite0:float32": zoo_model("efficientnet_lite0", "float32")}


@pytest.fixture(scope="module")
def server(models: dict[str, Path], zoo_cache: Path) -> Iterator[Server]:
    srv = Server("--max-upload-mb", "4", "--max-queue", "8", "--max-models", "2", "--threads", "2",
                 "--max-batch", "4",
                 cache=zoo_cache, api_key=KEY)
    yield srv
    assert srv.stop() in STOPPED, "".join(srv.stderr)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return [path for path, _ in labelled_imagenet_photos()]


def library(path: Path, **options) -> ImageClassifier:
    return ImageClassifier.create_from_options(ImageClassifierOptions(model_path=path, **options))


def expected_results(model: Path, images: list, **options) -> list[ClassificationResult]:
    with library(model, **options) as classifier:
        return [classifier.classify(image) for image in images]


def assert_same(row: dict, result: ClassificationResult) -> None:
    assert "error" not in row, row
    assert row["ambiguous"] == result.ambiguous
    got = [(c["index"], c["score"]) for c in row["categories"]]
    assert got[0][0] == result.categories[0].index
    assert len(got) == len(result.categories)
    for (index, score), category in zip(got, result.categories, strict=True):
        if score - category.score > SCORE_TOL or category.score - score > SCORE_TOL:
            raise AssertionError(f"class {index}: {score} from the server, {category.score} from the library")


def multipart(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def counter(client: httpx.Client, name: str, **labels: str) -> float:
    """A metric's value from /metrics (0 when absent)."""
    text = client.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        found = re.match(r"([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if found and found.group(1) == name:
            got = ",".join(sorted((found.group(2) or "").split(",")))
            if got == wanted:
                return float(found.group(3))
    return 0.0


# -- classify -----------------------------------------------------------------------------------


def test_serves_on_loopback_with_health_docs_and_page(server: Server, client: httpx.Client) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"
    docs = client.get("/docs").text
    assert "swagger" in docs.lower() and "cdn" not in docs  # served by the package: works offline
    for asset in re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", docs):
        assert client.get(asset).status_code == 200, asset
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/classify", "/v1/models/{model}:classify", "/v1/models"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "<script" in page.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset


def test_one_photo_as_raw_body_and_as_a_file_matches_the_library(client, models, photos) -> None:
    [expected] = expected_results(models["efficientnet_lite0:int8"], [photos[0]])
    raw = client.post("/v1/classify", content=photos[0].read_bytes(), params={"filename": photos[0].name})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["model"] == "efficientnet_lite0:int8"
    assert_same(body["results"][0], expected)
    assert body["results"][0]["file"] == photos[0].name
    assert body["results"][0]["inference_ms"] > 0
    as_file = client.post("/v1/models/efficientnet_lite0:int8:classify", files=multipart(photos[:1]))
    assert as_file.status_code == 200, as_file.text
    assert_same(as_file.json()["results"][0], expected)


def test_rows_are_what_classify_json_prints(client, models, photos, capsys) -> None:
    model = str(models["efficientnet_lite0:int8"])
    assert main(["classify", str(photos[1]), "--model", model, "--json"]) == 0
    cli_row = json.loads(capsys.readouterr().out.splitlines()[0])
    row = client.post("/v1/classify", files=multipart(photos[1:2])).json()["results"][0]
    assert set(row) - {"inference_ms"} == set(cli_row)
    assert row["categories"][0] == cli_row["categories"][0]
    assert [c["index"] for c in row["categories"]] == [c["index"] for c in cli_row["categories"]]


def test_several_photos_in_one_request_come_back_in_order(client, models, photos) -> None:
    chosen = photos + more_photos()[:8]
    expected = expected_results(models["efficientnet_lite0:int8"], chosen)
    response = client.post("/v1/classify", files=multipart(chosen))
    assert response.status_code == 200, response.text
    rows = response.json()["results"]
    assert [r["file"] for r in rows] == [p.name for p in chosen]
    for row, result in zip(rows, expected, strict=True):
        assert_same(row, result)


def test_options_max_results_threshold_lists_and_region(client, models, photos) -> None:
    model = models["efficientnet_lite0:int8"]
    photo = photos[2]
    with library(model, max_results=-1) as classifier:
        full = classifier.classify(photo)
        names = [c.category_name for c in full.categories]
        crop_image = load_image(photo)
        width, height = crop_image.size
        roi = (0.1, 0.2, 0.6, 0.9)
        crop = classifier.classify(crop_image.crop((round(0.1 * width), round(0.2 * height),
                                                    round(0.6 * width), round(0.9 * height))))

    def ask(**params) -> dict:
        response = client.post("/v1/classify", files=multipart([photo]), params=params)
        assert response.status_code == 200, response.text
        return response.json()["results"][0]

    assert len(ask(max_results=2)["categories"]) == 2
    threshold = (full.categories[0].score + full.categories[1].score) / 2
    assert [c["index"] for c in ask(score_threshold=threshold)["categories"]] == [full.categories[0].index]
    allowed = ask(allow=[names[3], names[7]])
    assert [c["category_name"] for c in allowed["categories"]] == [names[3], names[7]]
    denied = ask(deny=[names[0]])
    assert denied["categories"][0]["category_name"] == names[1]
    with library(model, category_denylist=[names[0]]) as classifier:
        assert denied["ambiguous"] == classifier.classify(photo).ambiguous
    # form fields work like query fields
    form = client.post("/v1/classify", files=multipart([photo]), data={"max_results": "3"}).json()
    assert len(form["results"][0]["categories"]) == 3
    region = ask(roi=",".join(map(str, roi)), max_results=-1)
    assert region["categories"][0]["index"] == crop.categories[0].index
    assert abs(region["categories"][0]["score"] - crop.categories[0].score) <= SCORE_TOL


def test_two_models_at_once_and_the_least_recently_used_is_unloaded(client, models, photos) -> None:
    expected = {name: expected_results(models[name], photos[:6])
                for name in ("efficientnet_lite0:int8", "mobilenet_v2:float32")}
    answers: dict[str, list] = {}

    def run(name: str) -> None:
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=60) as own:
            answers[name] = [own.post(f"/v1/models/{name}:classify", files=multipart([p])).json()
                             for p in photos[:6]]

    threads = [threading.Thread(target=run, args=(name,)) for name in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, results in expected.items():
        for answer, result in zip(answers[name], results, strict=True):
            assert answer["model"] == name
            assert_same(answer["results"][0], result)
    listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed["efficientnet_lite0:int8"]["loaded"] and listed["mobilenet_v2:float32"]["loaded"]
    assert listed["mobilenet_v2:float32"]["input_size"] == [224, 224]
    assert listed["mobilenet_v2:float32"]["labels_count"] == 1000
    size = models["efficientnet_lite0:int8"].stat().st_size
    assert listed["efficientnet_lite0:int8"]["file_size_bytes"] == size
    assert listed["efficientnet_lite0:int8"]["input_dtype"] == "uint8"
    assert listed["efficientnet_lite0:int8"]["published_top1"] is not None
    # --max-models 2: a third model unloads the least recently used (efficientnet_lite0:int8 was
    # used before mobilenet_v2 finished? use it now so mobilenet_v2 is the oldest)
    client.post("/v1/classify", files=multipart(photos[:1]))
    third = client.post("/v1/models/efficientnet_lite0:float32:classify", files=multipart(photos[:1]))
    assert third.status_code == 200
    loaded = {m["name"] for m in client.get("/v1/models").json()["models"] if m["loaded"]}
    assert loaded == {"efficientnet_lite0:int8", "efficientnet_lite0:float32"}


def test_concurrent_requests_are_batched_and_still_right(server, client, models, photos) -> None:
    before_count = counter(client, "litecls_batch_size_count", model="efficientnet_lite0:int8")
    before_sum = counter(client, "litecls_batch_size_sum", model="efficientnet_lite0:int8")
    before_images = counter(client, "litecls_images_classified_total", model="efficientnet_lite0:int8")
    chosen = photos[:8]
    expected = expected_results(models["efficientnet_lite0:int8"], chosen)

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
            return await asyncio.gather(*(c.post("/v1/classify", content=p.read_bytes()) for p in chosen))

    responses = asyncio.run(fire())
    for response, result in zip(responses, expected, strict=True):
        assert response.status_code == 200, response.text
        assert_same(response.json()["results"][0], result)
    batches = counter(client, "litecls_batch_size_count", model="efficientnet_lite0:int8") - before_count
    images = counter(client, "litecls_batch_size_sum", model="efficientnet_lite0:int8") - before_sum
    assert images == len(chosen)
    assert batches < len(chosen), "8 concurrent requests should share batched invokes"
    assert counter(client, "litecls_images_classified_total",
                   model="efficientnet_lite0:int8") - before_images == len(chosen)


def test_classify_tensors_gives_each_image_its_own_result(models, photos) -> None:
    import numpy as np

    with library(models["efficientnet_lite0:int8"]) as classifier:
        alone = [classifier.classify(p) for p in photos[:4]]
        batch = np.concatenate([classifier.preprocess(p) for p in photos[:4]])
        with library(models["efficientnet_lite0:int8"]) as batched:
            together = batched.classify_tensors(batch)
            with pytest.raises(ValueError, match=r"\[N, H, W, C\] batch"):
                batched.classify_tensors(batch[0])
    assert len(together) == 4
    for one, result in zip(alone, together, strict=True):
        row = {"ambiguous": result.ambiguous,
               "categories": [{"index": c.index, "score": c.score} for c in result.categories]}
        assert_same(row, one)
        assert result.inference_ms > 0


def test_chunk_sizes_are_powers_of_two_up_to_max_batch() -> None:
    assert chunk_sizes(13, 8) == [8, 4, 1]
    assert chunk_sizes(20, 12) == [8, 8, 4]
    assert chunk_sizes(1, 1) == [1]
    assert all(sum(chunk_sizes(n, m)) == n for n in range(1, 40) for m in range(1, 20))


# -- errors -------------------------------------------------------------------------------------


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    return body["error"]


def test_every_bad_request_gets_a_json_error_and_the_server_keeps_serving(server, client, models, photos,
                                                                         tmp_path, capsys) -> None:
    requests_422 = counter(client, "litecls_requests_total", route="/v1/classify", status="422")
    # 413: over --max-upload-mb 4, by Content-Length and by a chunked body
    big = photos[0].read_bytes() * (4_300_000 // len(photos[0].read_bytes()) + 1)
    assert "over the limit of 4 MB" in error_of(client.post("/v1/classify", content=big), 413)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    assert "over the limit" in error_of(client.post("/v1/classify", content=chunks()), 413)
    # 422: not an image, corrupt, decompression bomb; the message is the CLI's, naming the upload
    truncated = photos[0].read_bytes()[:3000]
    from test_cli_classify import png_claiming

    cases = {"notes.txt": b"just some text, not a photo", "cut.jpg": truncated,
             "bomb.png": png_claiming(20000, 20000)}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        main(["classify", str(tmp_path / name), "--model", str(models["efficientnet_lite0:int8"])])
        cli_message = capsys.readouterr().err.splitlines()[0].removeprefix("litecls: cannot classify: ")
        response = client.post("/v1/classify", files=[("files", (name, data, "application/octet-stream"))])
        assert error_of(response, 422) == cli_message.replace(str(tmp_path / name), name)
        assert response.json()["results"][0]["error"] == error_of(response, 422)
    # one bad image among good ones: 200, its own error row, the rest classified
    text_file = ("files", ("notes.txt", b"text", "text/plain"))
    mixed = client.post("/v1/classify", files=[*multipart(photos[:2]), text_file])
    assert mixed.status_code == 200
    assert ["error" in r for r in mixed.json()["results"]] == [False, False, True]
    assert set(mixed.json()["results"][2]) == {"file", "error"}
    # 404: unknown models, and no way to name a file on the server's disk
    for name in ("no_such_model", "/etc/passwd", "../../etc/passwd", str(models["efficientnet_lite0:int8"])):
        message = error_of(client.post("/v1/classify", params={"model": name}, content=b"x"), 404)
        assert "unknown model" in message
    assert "unknown model" in error_of(client.post("/v1/models/nope:classify", content=b"x"), 404)
    assert error_of(client.get("/v1/nowhere"), 404)
    # 422: bad option values
    for params in ({"max_results": "0"}, {"max_results": "many"}, {"score_threshold": "2"},
                   {"allow": "tench", "deny": "goldfish"}, {"roi": "0.5,0.5,0.2,0.9"}, {"colour": "red"},
                   {"allow": "no such label at all"}):
        assert error_of(client.post("/v1/classify", params=params, files=multipart(photos[:1])), 422)
    assert "no image" in error_of(client.post("/v1/classify", files={"max_results": (None, "2")}), 422)
    # 401: missing or wrong API key (health and metrics stay open)
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert "missing API key" in error_of(anonymous.post("/v1/classify", content=b"x"), 401)
        assert error_of(anonymous.get("/v1/models"), 401)
        assert "wrong API key" in error_of(anonymous.post("/v1/classify", content=b"x",
                                                          headers={"X-API-Key": "nope"}), 401)
        bearer = anonymous.post("/v1/classify", content=photos[0].read_bytes(),
                                headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        assert anonymous.get("/healthz").status_code == 200
    # 503 + Retry-After: more requests than --max-queue 8 at once; the rest are answered
    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
            return await asyncio.gather(*(c.post("/v1/classify", files=multipart(photos[:6]))
                                          for _ in range(30)))

    statuses = [r.status_code for r in asyncio.run(flood())]
    assert set(statuses) == {200, 503}, statuses
    busy = next(r for r in asyncio.run(flood()) if r.status_code == 503)
    assert busy.headers["Retry-After"] == "1" and "busy" in error_of(busy, 503)
    # ... and it still serves, and counted what it answered
    assert_same(client.post("/v1/classify", content=photos[0].read_bytes()).json()["results"][0],
                expected_results(models["efficientnet_lite0:int8"], photos[:1])[0])
    assert counter(client, "litecls_requests_total", route="/v1/classify", status="422") >= requests_422 + 10
    assert counter(client, "litecls_requests_total", route="/v1/classify", status="503") >= 1
    assert counter(client, "litecls_queue_depth") == 0
    assert client.get("/readyz").status_code == 200


def test_shutdown_finishes_requests_in_flight(models, zoo_cache, photos) -> None:
    # without batching (the default), where each image is decoded and run on one pool thread
    srv = Server("--threads", "1", cache=zoo_cache)
    chosen = photos * 2
    answer: dict[str, httpx.Response] = {}

    def post() -> None:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            answer["r"] = c.post("/v1/classify", files=multipart(chosen))

    thread = threading.Thread(target=post)
    thread.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        deadline = time.monotonic() + 30
        while counter(c, "litecls_queue_depth") < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
    assert srv.stop() in STOPPED, "".join(srv.stderr)
    thread.join()
    response = answer["r"]
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == len(chosen)
    expected = expected_results(models["efficientnet_lite0:int8"], photos)
    for row, result in zip(response.json()["results"], expected * 2, strict=True):
        assert_same(row, result)


# -- the camera WebSocket -------------------------------------------------------------------------


def test_camera_socket_answers_frames_and_keeps_only_the_newest(server, models, photos) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    base = server.url.replace("http://", "ws://") + "/v1/ws/classify"
    frame = photos[3].read_bytes()
    [expected] = expected_results(models["efficientnet_lite0:int8"], [frame])
    with connect(f"{base}?api_key={KEY}&max_results=3") as ws:
        ws.send(frame)
        answer = json.loads(ws.recv(timeout=30))
        assert answer["model"] == "efficientnet_lite0:int8"
        assert answer["categories"][0]["index"] == expected.categories[0].index
        assert len(answer["categories"]) == 3 and answer["inference_ms"] > 0
        # a burst: every frame is answered or dropped for a newer one, never queued
        for _ in range(20):
            ws.send(frame)
        answers = []
        while not answers or answers[-1]["seq"] < 21:
            answers.append(json.loads(ws.recv(timeout=30)))
        assert len(answers) + answers[-1]["dropped"] == 20
        ws.send(b"not a picture")
        assert "frame: not an image file" in json.loads(ws.recv(timeout=30))["error"]
    with connect(f"{base}?api_key=wrong") as ws:
        assert json.loads(ws.recv(timeout=30))["status"] == 401
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd.code == 1008
    with connect(f"{base}?api_key={KEY}&model=no_such_model") as ws:
        assert "unknown model" in json.loads(ws.recv(timeout=30))["error"]


# -- the command --------------------------------------------------------------------------------


def test_the_cli_starts_without_importing_fastapi_and_refuses_bad_settings(capsys, tmp_path) -> None:
    import subprocess
    import sys

    code = ("import sys, litecls.cli.main as m; m.build_parser(); "
            "print('fastapi' in sys.modules, 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert main(["serve", "--model", str(tmp_path / "missing.tflite")]) == 2
    assert "missing.tflite: no such model file" in capsys.readouterr().err
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "--max-batch" in capsys.readouterr().err
