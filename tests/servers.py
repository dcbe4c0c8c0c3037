"""Start ``litecls serve`` as a real subprocess on a free loopback port, and stop it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

#: ``python -c PROXIED settings.json root_path``: the service's app from ServeSettings given as JSON,
#: served by uvicorn as an app mounted at ``root_path`` behind a proxy (the request paths stay
#: the same; the app sees them under ``root_path``), printing its URL as ``litecls serve`` does.
PROXIED = """
import socket, sys, uvicorn
from litecls.serve import ServeSettings, create_app
app = create_app(ServeSettings.model_validate_json(open(sys.argv[1]).read()))
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
print(f"http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", root_path=sys.argv[2])).run(sockets=[sock])
"""


class Server:
    """``litecls serve --port 0 ARGS`` in a subprocess; ``url`` once ``/readyz`` answers 200.

    With ``command``, that command instead (it prints the URL first, as ``litecls serve`` does).
    """

    def __init__(self, *args: str, cache: Path, api_key: str | None = None, timeout: float = 120.0,
                 command: list[str] | None = None) -> None:
        if command is None:
            command = [sys.executable, "-m", "litecls.cli.main", "serve", "--port", "0",
                       "--cache-dir", str(cache), *args]
            if api_key:
                command += ["--api-key", api_key]
        self.api_key = api_key
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self.process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if not found:
            self.stop()
            raise RuntimeError(f"litecls serve did not print its URL: {line!r} {''.join(self.stderr)}")
        self.url = found.group(1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"litecls serve exited: {''.join(self.stderr)}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("litecls serve did not become ready")

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)

    @property
    def headers(self) -> dict[str, str]:
        """The API-key header, when the server has a key."""
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def client(self, **kwargs) -> httpx.Client:
        """An HTTP client for this server (with its API key)."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it to exit; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
