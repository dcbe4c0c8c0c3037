"""``litecls serve --ray``: the same FastAPI app as ``litecls serve``, as a Ray Serve deployment.

Each replica builds the app with :func:`litecls.serve.app.create_app` from the same
:class:`~litecls.serve.settings.ServeSettings` (``@serve.ingress`` with the app built late, in
the replica, so nothing of a live app is pickled): the same routes, HTTP contract, web page,
API key, limits and metrics, and the app's own dynamic batching inside each replica. Ray
Serve's proxy takes the HTTP traffic on ``--host``/``--port`` and spreads requests over the
replicas: a fixed number (``--replicas``) or between ``MIN`` and ``MAX`` by load
(``--autoscale``). Needs ``pip install 'litecls[ray]'``.
"""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from litecls.serve.settings import ServeSettings

#: Ray Serve application (and deployment) name.
APP_NAME = "litecls"
#: Requests in progress per replica that Ray Serve's autoscaler aims at.
TARGET_ONGOING = 4


class LiteclsIngress:
    """One replica: holds the settings; Ray Serve calls :meth:`__serve_build_asgi_app__` in the replica."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        """The replica's app, built where it runs (its lifespan loads the models there)."""
        from litecls.serve.app import create_app

        return create_app(self.settings)


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` -> ``(MIN, MAX)``.

    Raises:
        ValueError: not two integers with ``1 <= MIN <= MAX``.
    """
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"--autoscale needs MIN:MAX replicas, e.g. 1:4; got {text!r}") from None
    if not 1 <= low <= high:
        raise ValueError(f"--autoscale needs 1 <= MIN <= MAX, got {text!r}")
    return low, high


def build_application(settings: ServeSettings, replicas: int = 1,
                      autoscale: tuple[int, int] | None = None) -> Any:
    """The bound Ray Serve application of the service.

    Args:
        settings: the service's settings, as ``litecls serve`` builds them.
        replicas: fixed number of replicas (ignored with ``autoscale``).
        autoscale: ``(min, max)`` replicas, scaled by requests in progress.

    Returns:
        The application, for ``serve.run``.
    """
    from ray import serve

    from litecls.bulk.pipeline import NO_FORK_ENV

    # No trial run in a forked replica (see NO_FORK_ENV): run_on_ray tries the offered files first.
    options: dict[str, Any] = {"name": APP_NAME, "max_ongoing_requests": settings.max_queue,
                               "ray_actor_options": {"num_cpus": 1, "runtime_env": NO_FORK_ENV}}
    if autoscale is not None:
        options["autoscaling_config"] = {"min_replicas": autoscale[0], "max_replicas": autoscale[1],
                                         "initial_replicas": autoscale[0],
                                         "target_ongoing_requests": TARGET_ONGOING}
    else:
        options["num_replicas"] = replicas
    ingress = serve.ingress()(LiteclsIngress)
    return serve.deployment(**options)(ingress).bind(settings)


def try_model_files(settings: ServeSettings) -> None:
    """Load each model file offered at start-up once here, before Ray starts (the replicas do not
    fork to try them); zoo models carry a checksum and need no trial.

    Raises:
        ModelFileError: a file is not a model LiteRT can run.
    """
    from pathlib import Path

    from litecls.runtime.interpreter import read_model_bytes, trial_in_child

    for ref in settings.models:
        if Path(ref).is_file():
            data, name = read_model_bytes(ref)
            trial_in_child(data, name)


def free_port(host: str) -> int:
    """A port free on ``host`` now (Ray Serve's proxy cannot be given port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def run_on_ray(settings: ServeSettings, replicas: int = 1, autoscale: tuple[int, int] | None = None,
               address: str | None = None, verbose: bool = False) -> int:
    """Deploy the service on Ray Serve and wait until SIGINT or SIGTERM; then shut it down.

    Args:
        settings: the service's settings (``port`` 0 picks a free port).
        replicas: fixed number of replicas.
        autoscale: ``(min, max)`` replicas instead.
        address: a Ray cluster to deploy on (default: a local Ray on this machine's cores).
        verbose: let Ray's log lines through.

    Returns:
        The exit status (0).

    Raises:
        MissingExtraError: the ``ray`` extra is not installed.
        BulkError: the cluster cannot be reached.
    """
    from litecls.bulk.cluster import connect, terminal_kept_quiet

    try_model_files(settings)
    port = settings.port or free_port(settings.host)
    stop = threading.Event()
    with terminal_kept_quiet(verbose) as terminal:
        where = connect(address, verbose, feature="litecls serve --ray", client_ok=True)
        # After ray.init, which installs its own fatal-signal handlers: SIGTERM is a clean stop here.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        import logging

        from ray import serve

        logging.getLogger("ray.serve").setLevel(logging.INFO if verbose else logging.ERROR)
        serve.start(http_options={"host": settings.host, "port": port},
                    logging_config={"log_level": "INFO" if verbose else "WARNING"})
        serve.run(build_application(settings, replicas, autoscale), name=APP_NAME, route_prefix="/")
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        scale = f"{autoscale[0]}-{autoscale[1]} replicas" if autoscale else f"{replicas} replica" + (
            "s" if replicas != 1 else "")
        print(f"litecls serve: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; on Ray Serve, "
              f"{scale}, {where}; Ctrl+C stops)", flush=True)
        try:
            stop.wait()
        finally:
            print("litecls serve: stopping Ray Serve", file=terminal)
            serve.shutdown()
    return 0
