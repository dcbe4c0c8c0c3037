"""The classify routes' fast path answers exactly as the FastAPI routes it stands in front of.

Two real servers with the same settings: ``litecls serve`` (requests at ``/`` take the fast path,
serve.fastpath) and the same app served by uvicorn under a ``root_path``, as behind a proxy
(the fast path steps aside, FastAPI's routes answer). Every kind of answer is compared.
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import PROXIED, Server

from litecls.samples import labelled_imagenet_photos
from litecls.serve.settings import ServeSettings

KEY = "fast-key-5b21"
pytestmark = [pytest.mark.serve, pytest.mark.zoo]


@pytest.fixture(scope="module")
def servers(zoo_model, zoo_cache, tmp_path_factory) -> Iterator[dict[str, Server]]:
    """``fast``: litecls serve; ``routed``: the same app under a root_path (FastAPI's routes)."""
    zoo_model("efficientnet_lite0", "int8")
    settings = ServeSettings(models=("efficientnet_lite0:int8",), threads=2, max_batch=1, max_upload_mb=1,
                             api_key=KEY, cache_dir=str(zoo_cache))
    path = tmp_path_factory.mktemp("settings") / "settings.json"
    path.write_text(settings.model_dump_json())
    started = {"fast": Server("--model", "efficientnet_lite0:int8", "--threads", "2", "--max-batch", "1",
                              "--max-upload-mb", "1", cache=zoo_cache, api_key=KEY)}
    try:
        started["routed"] = Server(cache=zoo_cache, api_key=KEY,
                                   command=[sys.executable, "-c", PROXIED, str(path), "/proxy"])
        yield started
    finally:
        for server in started.values():
            assert server.stop() in (0, -signal.SIGTERM), "".join(server.stderr)


def answer(response: httpx.Response) -> tuple:
    """What a client sees: the status, the JSON (timings dropped) and the headers that matter."""
    body = response.json()
    for row in body.get("results") or []:
        row.pop("inference_ms", None)
    return (response.status_code, body, response.headers.get("content-type"),
            response.headers.get("www-authenticate"), response.headers.get("retry-after"))


def requests(photo: bytes) -> list[tuple[str, str, dict]]:
    """(name, path, httpx arguments) of every kind of classify call: answered, refused, failed.

    Made anew for each server: a streamed body can be sent once. ``key`` in the arguments: the
    API-key header to send in place of the right one (``None``: none at all).
    """
    big = photo * (1_100_000 // len(photo) + 1)
    return [
        ("raw body", "/v1/classify", {"content": photo, "params": {"filename": "a.jpg"}}),
        ("multipart with form options", "/v1/classify",
         {"files": [("files", ("a.jpg", photo, "image/jpeg")), ("files", ("b.txt", b"text", "text/plain"))],
          "data": {"max_results": "3", "score_threshold": "0.01"}}),
        ("model in the path, options in the query", "/v1/models/efficientnet_lite0:int8:classify",
         {"content": photo, "params": {"max_results": "-1", "deny": "tench"}}),
        ("model in the query", "/v1/classify",
         {"content": photo, "params": {"model": "efficientnet_lite0:int8"}}),
        ("no key", "/v1/classify", {"content": photo, "key": None}),
        ("wrong key", "/v1/classify", {"content": photo, "key": {"X-API-Key": "nope"}}),
        ("bearer key", "/v1/classify", {"content": photo, "key": {"Authorization": f"Bearer {KEY}"}}),
        ("over the limit by length", "/v1/classify", {"content": big}),
        ("over the limit while reading", "/v1/classify", {"content": iter([big[:600_000], big[600_000:]])}),
        ("not an image", "/v1/classify", {"content": b"just text", "params": {"filename": "t.txt"}}),
        ("no image", "/v1/classify", {"files": {"max_results": (None, "2")}}),
        ("bad option", "/v1/classify", {"content": photo, "params": {"max_results": "0"}}),
        ("unknown option", "/v1/classify", {"content": photo, "params": {"colour": "red"}}),
        ("unknown label", "/v1/classify", {"content": photo, "params": {"allow": "no such label"}}),
        ("unknown model", "/v1/models/nope:classify", {"content": photo}),
        ("broken multipart", "/v1/classify",
         {"content": b"--x\r\nnonsense", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}),
    ]


def send(server: Server, path: str, kwargs: dict) -> httpx.Response:
    """POST one request, with the server's API key unless ``kwargs`` say otherwise."""
    headers = kwargs.pop("key") or {} if "key" in kwargs else server.headers
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        return client.post(path, **kwargs)


#: The request counts and latency-histogram counts in /metrics of the classify routes, and of
#: requests refused before routing (a body declared over the limit: ``unmatched``).
COUNTED = re.compile(r'^(litecls_requests_total|litecls_request_seconds_count)'
                     r'\{(route="(?:/v1/[^"]*classify|unmatched)"(?:,status="\d+")?)\} (\S+)$', re.MULTILINE)


def classify_metrics(server: Server) -> dict[tuple[str, str], float]:
    """``{(metric, labels): value}`` of the classify routes' request counters and latency counts."""
    with server.client() as client:
        text = client.get("/metrics").text
    return {(metric, labels): float(value) for metric, labels, value in COUNTED.findall(text)}


def test_fast_path_answers_as_the_fastapi_routes(servers: dict[str, Server]) -> None:
    photo = Path(labelled_imagenet_photos()[0][0]).read_bytes()
    count = len(requests(photo))
    for index in range(count):
        got = {kind: answer(send(server, *requests(photo)[index][1:])) for kind, server in servers.items()}
        name = requests(photo)[index][0]
        assert got["fast"] == got["routed"], name
        assert got["fast"][0] in (200, 400, 401, 404, 413, 422), (name, got["fast"])
    metrics = {kind: classify_metrics(server) for kind, server in servers.items()}
    assert metrics["fast"] == metrics["routed"]
    for metric in ("litecls_requests_total", "litecls_request_seconds_count"):  # each request, once
        assert sum(v for (name, _), v in metrics["fast"].items() if name == metric) == count, metric


def test_fast_path_takes_only_posts_to_the_classify_paths_at_the_root() -> None:
    from litecls.serve.fastpath import CLASSIFY, CLASSIFY_WITH, classify_route

    def call(path: str, method: str = "POST", root_path: str = "", kind: str = "http") -> dict:
        return {"type": kind, "method": method, "path": path, "root_path": root_path}

    assert classify_route(call("/v1/classify")) == (CLASSIFY, None)
    assert classify_route(call("/v1/models/efficientnet_lite0:int8:classify")) == (
        CLASSIFY_WITH, "efficientnet_lite0:int8")
    for other in (call("/v1/classify", "GET"), call("/v1/classify/"), call("/v1/embed"),
                  call("/v1/models/a/b:classify"), call("/v1/models/:classify"),
                  call("/proxy/v1/classify", root_path="/proxy"), call("/v1/models:classify")):
        assert classify_route(other) is None, other
