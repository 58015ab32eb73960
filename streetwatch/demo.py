"""The demo: a still camera built from a real street photo that ships with ultralytics, watched for parking."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import yaml


def asset_image(name: str) -> npt.NDArray[np.uint8]:
    """A photo from the installed ultralytics wheel's assets (bus.jpg, zidane.jpg)."""
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path} is missing from the ultralytics install")
    return np.asarray(image, dtype=np.uint8)


def write_video(path: Path, segments: Sequence[tuple[npt.NDArray[np.uint8] | None, float]], fps: float = 5.0) -> Path:
    """Write an MP4 of still segments: (image, seconds) each; None stands for an empty grey street.

    All images must share one size; the grey frames take the size of the first image.
    """
    first = next(img for img, _ in segments if img is not None)
    h, w = first.shape[:2]
    blank = np.full((h, w, 3), 128, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"could not open a video writer for {path}")
    try:
        for img, seconds in segments:
            frame = blank if img is None else img
            for _ in range(round(seconds * fps)):
                writer.write(frame)
    finally:
        writer.release()
    return path


def encode_video(
    path: Path,
    frames: Iterable[npt.NDArray[np.uint8]],
    *,
    fps: int,
    codec: str = "libx264",
    keyframe_every_s: float = 2.0,
    b_frames: int = 0,
    intra_refresh: bool = False,
) -> Path:
    """Encode BGR frames as a camera would: H.264 (`libx264`) or HEVC (`libx265`), a keyframe every
    `keyframe_every_s` seconds (a fixed GOP, no extra keyframes at scene cuts) and `b_frames` B-frames.

    `intra_refresh` (H.264 only) is what low-latency cameras send instead: one IDR frame at the start, then a
    column of intra blocks sweeping across the picture every `keyframe_every_s`, each sweep's start marked as a
    recovery point, which demuxers flag as a keyframe although no frame can be decoded from it alone.
    """
    if intra_refresh and codec != "libx264":
        raise ValueError(f"intra refresh is made with libx264, not {codec}")
    path.parent.mkdir(parents=True, exist_ok=True)
    gop = max(1, round(keyframe_every_s * fps))
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec} is not a video codec")
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = b_frames
        params = {"scenecut": "0", "bframes": str(b_frames), "keyint": str(gop), "min-keyint": str(gop)}
        if intra_refresh:
            params["intra-refresh"] = "1"
        if codec == "libx264":
            stream.options = {"x264-params": ":".join(f"{k}={v}" for k, v in params.items()), "preset": "veryfast"}
        elif codec == "libx265":
            stream.options = {"x265-params": ":".join(f"{k}={v}" for k, v in params.items()) + ":log-level=error"}
        for image in frames:
            if not stream.width:
                stream.height, stream.width = image.shape[:2]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def panned(
    image: npt.NDArray[np.uint8], size: tuple[int, int], seconds: float, fps: int
) -> Iterator[npt.NDArray[np.uint8]]:
    """Street content that changes every frame: a window of `size` (w, h) panning slowly across a real photo, with
    a box driving across it."""
    w, h = size
    scaled = cv2.resize(image, (w * 5 // 4, h * 5 // 4))
    n = round(seconds * fps)
    for i in range(n):
        x = round((scaled.shape[1] - w) * i / max(1, n - 1))
        frame = np.ascontiguousarray(scaled[:h, x : x + w])
        car = (i * 7) % w
        cv2.rectangle(frame, (car, h * 3 // 4), (min(w - 1, car + w // 8), h * 3 // 4 + h // 12), (30, 30, 200), -1)
        yield frame


#: The kerb in bus.jpg where the bus stands, as a no-parking zone (normalised to the photo).
BUS_KERB_ZONE = [[0.0, 0.55], [1.0, 0.55], [1.0, 0.95], [0.0, 0.95]]


def write_demo(state_dir: Path, *, dwell_s: float = 10.0, stay_s: float = 20.0) -> Path:
    """Write the demo video and its config under `state_dir/demo`; returns the config path.

    The bus stands in the no-parking zone for `stay_s` (longer than `dwell_s`: one case), the street is
    empty for a while, then the bus stands again for less than `dwell_s` (no case).
    """
    demo = state_dir / "demo"
    bus = asset_image("bus.jpg")
    write_video(demo / "bus-stop.mp4", [(bus, stay_s), (None, 20.0), (bus, dwell_s / 2)])
    config = {
        "cameras": [
            {
                "id": "demo-bus-stop",
                "source": "bus-stop.mp4",
                "sample_every_s": 1.0,
                "zones": [{"id": "kerb", "kind": "no_parking", "polygon": BUS_KERB_ZONE, "dwell_s": dwell_s}],
            }
        ]
    }
    path = demo / "streetwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
