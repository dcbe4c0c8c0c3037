"""``litecls serve``: the HTTP classification service and its web app (extra ``litecls[serve]``)."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from litecls.errors import LiteclsError
from litecls.models.zoo import DEFAULT_MODEL

#: litecls.serve.settings.LOOPBACK; not imported, so that ``litecls`` starts without the serve extra.
LOOPBACK = "127.0.0.1"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = commands.add_parser("serve", help="HTTP classification service with dynamic batching; web app")
    p.add_argument("--model", "-m", action="append", metavar="NAME_OR_PATH",
                   help="a zoo model NAME[:PRECISION] or a .tflite file offered besides the zoo; repeat for "
                        "more; the first is the default (default: efficientnet_lite0, int8)")
    p.add_argument("--host", default=LOOPBACK,
                   help=f"address to bind (default {LOOPBACK}: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--threads", type=int, default=None,
                   help="interpreter threads per model (default: CPU count, at most 4)")
    p.add_argument("--api-key", default=os.environ.get("LITECLS_API_KEY"),
                   help="require this key in the X-API-Key header (default: $LITECLS_API_KEY; none)")
    p.add_argument("--max-models", type=int, default=4, help="models kept loaded (LRU; default 4)")
    p.add_argument("--max-batch", type=int, default=4,
                   help="most images per batched invoke (default 4; 1 turns dynamic batching off; "
                        "larger batches measured slower: see docs/serve.md)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="longest wait for more images to batch while requests are decoding (default 2)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body (default 20)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests in progress at once; more get 503 + Retry-After (default 64)")
    p.add_argument("--workers", type=int, default=None,
                   help="image decoding threads (default: CPU count + 4, at most 32)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    ray = p.add_argument_group("Ray Serve (extra litecls[ray])")
    ray.add_argument("--ray", action="store_true",
                     help="deploy the same app on Ray Serve (replicas, each batching on its own)")
    scale = ray.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=1, help="with --ray: replicas (default 1)")
    scale.add_argument("--autoscale", metavar="MIN:MAX",
                       help="with --ray: scale between MIN and MAX replicas")
    ray.add_argument("--address", help="with --ray: the Ray cluster (default: a local Ray on this machine)")
    ray.add_argument("--verbose", "-v", action="store_true", help="with --ray: show Ray's log lines")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until interrupted; in-flight requests finish before it exits."""
    try:
        import uvicorn

        from litecls.serve import ServeSettings, create_app
    except ImportError as exc:
        print(f"litecls: error: litecls serve needs the serve extra: pip install 'litecls[serve]' ({exc})",
              file=sys.stderr)
        return 2
    from pydantic import ValidationError

    from litecls.serve.registry import ModelNotFound

    values = {"models": tuple(args.model or [DEFAULT_MODEL]), "host": args.host, "port": args.port,
              "api_key": args.api_key, "max_models": args.max_models, "max_batch": args.max_batch,
              "max_wait_ms": args.max_wait_ms, "max_upload_mb": args.max_upload_mb,
              "max_queue": args.max_queue, "cache_dir": args.cache_dir}
    if args.threads is not None:
        values["threads"] = args.threads
    if args.workers is not None:
        values["decode_workers"] = args.workers
    try:
        settings = ServeSettings(**values)
        app = create_app(settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"litecls: error: --{str(err['loc'][0]).replace('_', '-')}: {err['msg']}", file=sys.stderr)
        return 2
    except (ModelNotFound, LiteclsError) as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    if args.ray:
        return _serve_on_ray(settings, args)
    try:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the
        # socket says TCP; with proto 0, Nagle held every response body ~40 ms on keep-alive.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        print(f"litecls: error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if settings.api_key is None and host not in ("127.0.0.1", "::1", "localhost"):
        print(f"litecls: warning: serving on {host} without --api-key: anyone who can reach this "
              "address can use it", file=sys.stderr)
    print(f"litecls serve: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; "
          f"default model {app.state.registry.default}; Ctrl+C stops)", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30,
                            ws_max_size=settings.max_upload_bytes, access_log=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


def _serve_on_ray(settings, args: argparse.Namespace) -> int:
    """``--ray``: the same app as a Ray Serve deployment (litecls.serve.ray_deploy)."""
    from litecls.serve.ray_deploy import parse_autoscale, run_on_ray

    try:
        autoscale = parse_autoscale(args.autoscale) if args.autoscale else None
    except ValueError as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    if args.replicas < 1:
        print(f"litecls: error: --replicas must be at least 1, got {args.replicas}", file=sys.stderr)
        return 2
    return run_on_ray(settings, args.replicas, autoscale, args.address, args.verbose)
