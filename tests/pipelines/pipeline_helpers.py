"""Helpers of the pipeline tests: a live MJPEG camera, a real RTSP server, the case service on a fixed port,
draft cases with real JPEG evidence, and polling."""

from __future__ import annotations

import http.server
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import cv2
import uvicorn
from colour_model import Image, scene
from pydantic import SecretStr

from service.admin import stored_cases
from service.app import create_app
from service.schemas import CaseOut, CaseType
from service.settings import ServiceSettings
from streetwatch.core import DraftCase, EvidenceImage, Violation

Box = tuple[float, float, float, float]


class MjpegCamera:
    """A live MJPEG-over-HTTP camera on 127.0.0.1 that streams whatever `show()` last set, at `fps`.

    `corrupt(n)` sends the next n frames as garbage; `freeze()` stops sending while keeping connections open;
    `close_connections()` drops every client (the camera stays reachable).
    """

    def __init__(self, image: Image, fps: float = 10.0) -> None:
        self.fps = fps
        self.connections = 0
        self._image = image
        self._corrupt = 0
        self._frozen = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                camera._serve(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def show(self, image: Image) -> None:
        with self._lock:
            self._image = image

    def corrupt(self, frames: int) -> None:
        with self._lock:
            self._corrupt = frames

    def freeze(self, frozen: bool = True) -> None:
        if frozen:
            self._frozen.set()
        else:
            self._frozen.clear()

    def close_connections(self) -> None:
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        self.close_connections()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            generation = self._generation
            self.connections += 1
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        try:
            while True:
                with self._lock:
                    if generation != self._generation:
                        return
                    image, bad = self._image, self._corrupt > 0
                    self._corrupt = max(0, self._corrupt - 1)
                if not self._frozen.is_set():
                    data = b"\xff\xd8garbage" * 50 if bad else bytes(cv2.imencode(".jpg", image)[1].tobytes())
                    handler.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(data), data)
                    )
                time.sleep(1 / self.fps)
        except (BrokenPipeError, ConnectionResetError):
            return


#: Debian's own Python: PyGObject and the GStreamer typelibs are Debian packages, not in the project's venv.
SYSTEM_PYTHON = Path("/usr/bin/python3")
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


@cache
def rtsp_server_missing() -> str | None:
    """Why the RTSP server (rtsp_server.py) cannot run here, or None when it can."""
    if not SYSTEM_PYTHON.is_file():
        return f"{SYSTEM_PYTHON} does not exist"
    check = subprocess.run(
        [str(SYSTEM_PYTHON), str(RTSP_SERVER), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    return None if check.returncode == 0 else check.stderr.strip() or f"exit status {check.returncode}"


class RtspServer:
    """GStreamer's RTSP server (rtsp_server.py, a real process) serving `video` (its video track in `codec`: mpeg4,
    h264 or hevc) at `url` on a fixed 127.0.0.1 port.

    Each client gets the video from its start, in real time, with the stream's own RTP timestamps. `kill()` ends
    it the hard way (as a crash or power cut would), `start()` brings it back on the same port.
    """

    def __init__(self, video: Path, port: int, log: Path, codec: str = "mpeg4") -> None:
        self.video = video
        self.codec = codec
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/camera"
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            # stdin stays open while this process lives: the server ends when it closes, even if a test dies.
            self._proc = subprocess.Popen(
                [
                    str(SYSTEM_PYTHON),
                    str(RTSP_SERVER),
                    "--codec",
                    self.codec,
                    str(self.port),
                    "/camera",
                    str(self.video),
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._listening, 20, f"the RTSP server on port {self.port}", every_s=0.05)

    def _listening(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise AssertionError(f"the RTSP server exited ({self._proc.returncode}): {self._log.read_text()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc = None


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2) -> None:
    """Poll until `condition()` is truthy; fail the test naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def jpeg(image: Image) -> bytes:
    return bytes(cv2.imencode(".jpg", image)[1].tobytes())


def draft(
    key: str, *, camera_id: str = "cam-1", box: Box = (0.1, 0.5, 0.3, 0.8), evidence: bytes | None = None
) -> DraftCase:
    """A draft illegal-parking case with real JPEG evidence (or the given bytes)."""
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    violation = Violation(
        key=key,
        camera_id=camera_id,
        zone_id="kerb",
        type=CaseType.ILLEGAL_PARKING,
        class_name="car",
        xyxy=box,
        confidence=0.9,
        first_seen_s=0.0,
        detected_s=30.0,
        first_seen_at=at,
        detected_at=at,
    )
    data = evidence if evidence is not None else jpeg(scene(("car", box)))
    return DraftCase(violation, ("car",), "colour-blobs-1", (EvidenceImage("scene.jpg", "image/jpeg", data),))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceThread:
    """The real case service app on a fixed 127.0.0.1 port in this process; it can stop and start again there."""

    def __init__(self, state_dir: Path, port: int, api_key: str) -> None:
        self.settings = ServiceSettings(state_dir=state_dir, bootstrap_agent_key=SecretStr(api_key))
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server is not None and self._server.started, 30, "the case service to start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = self._thread = None

    def cases(self) -> list[CaseOut]:
        """Every stored case, newest first."""
        return stored_cases(self.settings, limit=1000)
