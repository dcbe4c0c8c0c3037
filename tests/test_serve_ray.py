"""``litecls serve --ray`` answers as ``litecls serve`` does: same requests, same answers, same page.

Both run as real subprocesses on loopback ports (tests/servers.py); the Ray one deploys the app on
a local Ray Serve with two replicas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Server

from litecls.samples import labelled_imagenet_photos

pytestmark = [pytest.mark.serve, pytest.mark.ray, pytest.mark.zoo]
pytest.importorskip("ray")
KEY = "test-key-ray"


def multipart(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def _requests(photos: list[Path]) -> list[tuple[str, str, dict]]:
    """(name, method and path, request arguments) of the requests both must answer alike."""
    return [
        ("models", "GET /v1/models", {}),
        ("one photo, raw body", "POST /v1/classify", {"content": photos[0].read_bytes(),
                                                      "params": {"filename": photos[0].name}}),
        ("six photos", "POST /v1/classify", {"files": multipart(photos[:6])}),
        ("options", "POST /v1/classify", {"files": multipart(photos[6:8]),
                                          "params": {"max_results": 3, "score_threshold": 0.05}}),
        ("another model", "POST /v1/models/mobilenet_v2:float32:classify",
         {"files": multipart(photos[8:10])}),
        ("not an image", "POST /v1/classify",
         {"files": [("files", ("x.jpg", b"not an image", "image/jpeg"))]}),
        ("unknown model", "POST /v1/models/nope:classify", {"content": b"x"}),
        ("bad option", "POST /v1/classify", {"files": multipart(photos[:1]), "params": {"max_results": 0}}),
        ("no key", "POST /v1/classify", {"content": photos[0].read_bytes(), "headers": {"X-API-Key": ""}}),
        ("page", "GET /", {}),
    ]


def _strip_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k != "inference_ms"}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def _answers(server: Server, photos: list[Path]) -> dict[str, tuple[int, object]]:
    answers = {}
    with server.client() as client:
        for name, call, kwargs in _requests(photos):
            method, path = call.split(" ", 1)
            response = client.request(method, path, **kwargs)
            body = response.json() if "json" in response.headers.get("content-type", "") else response.text
            answers[name] = (response.status_code, _strip_timings(body))
    return answers


@pytest.fixture(scope="module")
def both(zoo_model, zoo_cache: Path) -> Iterator[tuple[Server, Server]]:
    zoo_model("efficientnet_lite0", "int8")
    zoo_model("mobilenet_v2", "float32")
    args = ("--max-batch", "4", "--threads", "1")
    plain = Server(*args, cache=zoo_cache, api_key=KEY)
    try:
        on_ray = Server(*args, "--ray", "--replicas", "2", cache=zoo_cache, api_key=KEY, timeout=300)
    except BaseException:
        plain.stop()
        raise
    yield plain, on_ray
    assert plain.stop() in (0, -15)
    assert on_ray.stop() == 0, "".join(on_ray.stderr)


def test_serve_on_ray_answers_the_same_requests_as_serve(both: tuple[Server, Server]) -> None:
    plain, on_ray = both
    photos = [path for path, _ in labelled_imagenet_photos()]
    want, got = _answers(plain, photos), _answers(on_ray, photos)
    for name in want:
        assert got[name] == want[name], name
    assert want["six photos"][0] == 200 and want["not an image"][0] != 200 and want["no key"][0] == 401

