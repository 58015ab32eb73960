"""The case service inside another process: uvicorn on a loopback port in a background thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Final, Self

import uvicorn
from pydantic import SecretStr

from service.app import create_app
from service.auth import generate_key
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"


class EmbeddedService:
    """Runs `create_app(settings)` on 127.0.0.1 with an OS-chosen port for the life of a `with` block.

    `url` is the base URL and `api_key` an agent key valid for this process only (the settings' bootstrap key,
    or a fresh random one); neither outlives the block.

        with EmbeddedService(ServiceSettings(state_dir=d)) as svc:
            httpx.post(f"{svc.url}/api/v1/cases", headers={"Authorization": f"Bearer {svc.api_key}"}, ...)
    """

    def __init__(self, settings: ServiceSettings, *, start_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.start_timeout_s = start_timeout_s
        self._url: str | None = None
        self._api_key: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the embedded service is not running; use it in a with block")
        return self._url

    @property
    def api_key(self) -> str:
        """The bootstrap agent key."""
        if self._api_key is None:
            raise RuntimeError("the embedded service is not running; use it in a with block")
        return self._api_key

    def __enter__(self) -> Self:
        given = self.settings.bootstrap_agent_key
        key = given.get_secret_value() if given is not None else generate_key()
        app = create_app(self.settings.model_copy(update={"bootstrap_agent_key": SecretStr(key)}))
        # Binding here, before the thread starts, gives the port at once and leaves no window for another
        # process to take it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="streetwatch-service", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"the embedded case service did not start on {HOST}:{port}")
            time.sleep(0.01)
        self._url, self._api_key = f"http://{HOST}:{port}", key
        log.info("embedded case service at %s", self._url)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                log.warning("the embedded case service did not stop within 30 s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._url = self._api_key = None
