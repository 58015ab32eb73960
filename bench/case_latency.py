"""How long after a stay's dwell has elapsed its case reaches the case service, on live-paced cameras.

Each camera is an RTSP stream served in real time by GStreamer's RTSP server (tests/pipelines/rtsp_server.py, run
with Debian's /usr/bin/python3; .ci/install-rtsp.sh installs it): --lead seconds of empty grey street, then the
first frame of ../shared/data's intersection video, whose white car at the top left stands in a no-parking zone.
`streetwatch run`'s path does the rest: the live source, the shipped model, tracking, the rule, evidence, the
outbox and HTTP to the case service, here the embedded one on a throwaway state dir. For each case:

    latency = created_at (the service's clock, when the post arrived) - the wall time the dwell elapsed

The rule counts the dwell in stream time, from the stay's first analysed frame (stream time s0) to s0 + dwell_s.
The stream reached s0 + dwell_s at: the wall time the pipeline read the frame that raised the case (a live frame
is stamped when it is read: the case's detected_at) less how far that frame's stream time lies beyond
s0 + dwell_s (under --every, so real-time pacing holds across it; wall and stream time are not compared over the
whole stay, since a stream's first seconds arrive in a burst). The latency is that wait for the next due frame,
the model and rules on it, the evidence and the delivery; it leaves out the camera's own encoder and network
delay, which no agent sees. Issue 12's target: at most 5 s.

Run: python bench/case_latency.py [--cameras 4] [--dwell 10] [--every 2] [--lead 4] [--state-dir streetwatch-data]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import cv2

from detector.model import Detector
from pipelines.agent import run_agent
from service.admin import stored_cases
from service.embedded import EmbeddedService
from service.settings import ServiceSettings
from streetwatch.config import StreetwatchConfig
from streetwatch.demo import write_video

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")
RTSP_SERVER = ROOT / "tests" / "pipelines" / "rtsp_server.py"
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "intersection_cctv_640x480.mp4"
#: Around the white car's bottom centre in the video's first frame (as in tests/test_run_end_to_end.py).
KERB_ZONE = [[0.05, 0.18], [0.30, 0.18], [0.30, 0.32], [0.05, 0.32]]
TARGET_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_rtsp(video: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The RTSP server on 127.0.0.1:port, once it listens; it ends when this process closes its stdin."""
    check = subprocess.run([str(SYSTEM_PYTHON), str(RTSP_SERVER), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"GStreamer's RTSP server cannot run here ({check.stderr.strip()}); see .ci/install-rtsp.sh")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(RTSP_SERVER), str(port), "/camera", str(video)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"the RTSP server did not listen on port {port}: {log.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4, help="Cameras, each its own RTSP session of the stream.")
    parser.add_argument("--dwell", type=float, default=10.0, help="The zone's dwell_s.")
    parser.add_argument("--every", type=float, default=2.0, help="sample_every_s of each camera.")
    parser.add_argument("--lead", type=float, default=4.0, help="Seconds of empty street before the car stands.")
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    args = parser.parse_args()
    ok, frame = cv2.VideoCapture(str(VIDEO)).read()
    if not ok:
        sys.exit(f"{VIDEO} is not here or does not decode; this bench needs ../shared/data")
    deadline_s = args.lead + args.dwell + 3 * args.every + 30
    detector = Detector(state_dir=args.state_dir)
    with tempfile.TemporaryDirectory(prefix="streetwatch-latency-") as tmp:
        work = Path(tmp)
        video = write_video(work / "kerb.mp4", [(None, args.lead), (frame, deadline_s + 30)], fps=10)
        port = free_port()
        server = serve_rtsp(video, port, work / "rtsp.log")
        zone = {"id": "kerb", "kind": "no_parking", "polygon": KERB_ZONE, "dwell_s": args.dwell}
        url = f"rtsp://127.0.0.1:{port}/camera"
        cameras = [
            {"id": f"cam-{i}", "source": url, "sample_every_s": args.every, "zones": [zone]}
            for i in range(args.cameras)
        ]
        config = StreetwatchConfig.model_validate({"cameras": cameras})
        settings = ServiceSettings(state_dir=work / "service")
        stop = threading.Event()
        try:
            with EmbeddedService(settings) as service:

                def stop_when_every_case_arrived() -> None:
                    end = time.monotonic() + deadline_s
                    while not stop.wait(0.5):
                        if len(stored_cases(settings)) >= args.cameras or time.monotonic() > end:
                            stop.set()

                threading.Thread(target=stop_when_every_case_arrived, daemon=True).start()
                stream_s: dict[tuple[str, datetime], float] = {}
                outcome = run_agent(
                    config,
                    detector=detector,
                    api_url=service.url,
                    api_key=service.api_key,
                    outbox_path=work / "outbox.db",
                    stop=stop,
                    on_frame=lambda f: stream_s.setdefault((f.camera_id, f.captured_at), f.timestamp_s),
                )
                cases = stored_cases(settings, limit=1000)
        finally:
            server.kill()
            server.wait(timeout=10)
            if server.stdin is not None:
                server.stdin.close()

    print(
        f"{args.cameras} live RTSP cameras (640x480 10 fps MPEG-4, real time), one analysed frame every "
        f"{args.every:g} s, dwell {args.dwell:g} s, the shipped model at imgsz {detector.imgsz}\n"
    )
    print("| camera | dwell elapsed (UTC) | next due frame after it, s | case arrived after it, s |")
    print("|---|---|---:|---:|")
    latencies = []
    for case in sorted(cases, key=lambda c: c.camera_id):
        first_s = stream_s[case.camera_id, case.first_seen_at]
        waited = stream_s[case.camera_id, case.detected_at] - (first_s + args.dwell)
        elapsed = case.detected_at - timedelta(seconds=waited)
        latency = (case.created_at - elapsed).total_seconds()
        latencies.append(latency)
        print(f"| {case.camera_id} | {elapsed:%H:%M:%S.%f} | {waited:.2f} | {latency:.2f} |")
    failed = outcome.stats.failed_cameras
    if failed:
        print(f"\ncameras that failed: {failed}")
    if not latencies:
        sys.exit("\nno case reached the service: the model did not see the car, or the cameras did not connect")
    print(
        f"\n{len(latencies)} of {args.cameras} cases arrived; latency median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s (target: at most {TARGET_S:g} s)"
    )


if __name__ == "__main__":
    main()
