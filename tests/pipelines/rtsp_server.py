"""A real RTSP server for the source tests: GStreamer's gst-rtsp-server serving an MP4 on 127.0.0.1, in real time,
without re-encoding: MPEG-4 Part 2 (as `write_video` writes it), H.264 or HEVC (as `encode_video` writes them).

Run with Debian's /usr/bin/python3 (PyGObject and the GStreamer typelibs come from Debian packages; see
.ci/install-rtsp.sh), not the project's venv:

    /usr/bin/python3 tests/pipelines/rtsp_server.py --check
    /usr/bin/python3 tests/pipelines/rtsp_server.py [--codec mpeg4|h264|hevc] PORT /MOUNT VIDEO.mp4

`--check` exits 0 only if everything the server needs is installed and says on stderr what is missing otherwise.
Every client gets the video from its start. The server ends on SIGTERM, or when its stdin closes, so that it
cannot outlive a test that died without cleaning up.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("rtsp_server")

#: The elements between the demuxer and the network for each codec the video may hold.
PAYLOADERS = {"mpeg4": "rtpmp4vpay", "h264": "h264parse ! rtph264pay", "hevc": "h265parse ! rtph265pay"}
ELEMENTS = ("filesrc", "qtdemux", "rtpmp4vpay", "h264parse", "rtph264pay", "h265parse", "rtph265pay")


def _gst() -> tuple[Any, Any, Any]:
    # require_version must run before the import from gi.repository, so the imports live here.
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    return GLib, Gst, GstRtspServer


def check() -> int:
    """0 when PyGObject, gst-rtsp-server and every element of the pipeline are installed; 1 otherwise."""
    try:
        _, gst, _ = _gst()
    except (ImportError, ValueError) as exc:
        log.error("missing: %s", exc)
        return 1
    missing = [name for name in ELEMENTS if gst.ElementFactory.find(name) is None]
    if missing:
        log.error("missing GStreamer elements: %s", ", ".join(missing))
        return 1
    return 0


def serve(port: int, mount: str, video: str, codec: str) -> int:
    """Serve `video` (its video track in `codec`) at rtsp://127.0.0.1:`port``mount` until SIGTERM/SIGINT or the
    end of stdin."""
    glib, _, rtsp = _gst()
    server = rtsp.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = rtsp.RTSPMediaFactory()
    location = video.replace("\\", "\\\\").replace('"', '\\"')
    payloader = PAYLOADERS[codec]
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! {payloader} name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        log.error("could not listen on 127.0.0.1:%d", port)
        return 1
    loop = glib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        glib.unix_signal_add(glib.PRIORITY_HIGH, signum, loop.quit)

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        glib.idle_add(loop.quit)

    threading.Thread(target=watch_stdin, daemon=True).start()
    log.info("serving %s at rtsp://127.0.0.1:%d%s", video, port, mount)
    loop.run()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="rtsp_server: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only check that the server can run")
    parser.add_argument("--codec", choices=sorted(PAYLOADERS), default="mpeg4", help="the video track's codec")
    parser.add_argument("port", type=int, nargs="?")
    parser.add_argument("mount", nargs="?", default="/camera")
    parser.add_argument("video", nargs="?")
    args = parser.parse_args()
    if args.check:
        return check()
    if args.port is None or args.video is None:
        parser.error("PORT and VIDEO are required")
    return serve(args.port, args.mount, args.video, args.codec)


if __name__ == "__main__":
    sys.exit(main())
