"""``litecls serve``: an HTTP classification service and the example web app.

Laid out like FastAPI's docs: :mod:`settings` (what the command line sets),
:mod:`registry` (models loaded on first use, least recently used unloaded),
:mod:`batching` (concurrent requests gathered into one invoke),
:mod:`schemas` (pydantic request and response models), :mod:`dependencies`
(the registry and the API key, injected into the routes), :mod:`routers`
(one module per group of endpoints) and :mod:`app` (the app factory).
The web page lives in ``static/`` and is served by the package itself.

Needs the ``serve`` extra: ``pip install 'litecls[serve]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litecls.serve.app import create_app
    from litecls.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> object:
    """``create_app`` and ``ServeSettings``, imported on first use (FastAPI is an extra)."""
    if name == "create_app":
        from litecls.serve.app import create_app

        return create_app
    if name == "ServeSettings":
        from litecls.serve.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module 'litecls.serve' has no attribute {name!r}")
