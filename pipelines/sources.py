"""Camera sources: decode a file, stream or device and yield the frames due for analysis, stamped with stream time.

A file ends at its end. A live source (RTSP, HTTP(S) MJPEG or HLS, a capture device) runs until stopped: when
it fails, stalls, ends or sends only undecodable frames, it is reopened with exponential backoff, and its
stream time carries on across reopenings so that dwell times never run backwards. Files and streams are read
with PyAV, decoding only what their due frames need; capture devices with OpenCV.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import cv2
import numpy as np
from av.container import InputContainer

from pipelines.decode import DecodeError, DueFrame, Sampler, due_frames
from pipelines.metrics import PipelineMetrics
from pipelines.recording import container_created_at
from pipelines.streams import UNTIMED_CODECS, DueDecoder, open_stream
from streetwatch.config import CameraConfig, PipelineConfig, SourceKind, source_kind
from streetwatch.core import Frame

log = logging.getLogger(__name__)

#: Consecutive failed reads after which a live connection counts as broken even before it stalls: a closed
#: connection fails at once, again and again.
MAX_FAILED_READS: Final = 50
#: A stream that sent packets but no keyframe for this long (or stall_timeout_s, if longer) flags none: reopened.
#: Longer than any camera's GOP, since a connection may begin just after a keyframe.
NO_KEYFRAME_S: Final = 60.0


class SourceError(RuntimeError):
    """A camera source could not be opened or read."""


def redacted(source: str | int) -> str:
    """The source as it may appear in logs: a password in a stream URL (rtsp://user:pw@host/...) is hidden."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", str(source))


def is_file_source(source: str | int) -> bool:
    """A local file (ends when the file ends), as opposed to a stream or device (runs until stopped)."""
    return source_kind(source) is SourceKind.FILE


def _existing_file(source: str | int) -> Path:
    path = Path(str(source))
    if not path.is_file():
        raise SourceError(f"video file {source} does not exist")
    return path


def _decoded_file(
    path: Path,
    every_s: float,
    stop: threading.Event,
    *,
    on_decoded: Callable[[], None] = lambda: None,
    skip_gops: bool = True,
) -> Iterator[DueFrame]:
    """A file's due frames, decoded as a run decodes them; a file that is no video raises SourceError."""
    try:
        yield from due_frames(path, every_s, stop, on_decoded=on_decoded, skip_gops=skip_gops)
    except DecodeError as exc:
        raise SourceError(str(exc)) from exc


def _open_device(source: str | int) -> cv2.VideoCapture:
    """Open a capture device with OpenCV, which speaks each platform's capture API (V4L2, DirectShow, AVFoundation)."""
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"could not open {redacted(source)}")
    return cap


def _open_stream(source: str, *, timeout_s: float, rtsp_transport: str) -> InputContainer:
    """Open a network stream with PyAV; raises SourceError saying why it could not, its password hidden."""
    try:
        container = open_stream(source, timeout_s=timeout_s, rtsp_transport=rtsp_transport)
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"could not open {redacted(source)}: {_reason(exc, source)}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{redacted(source)} holds no video stream")
    return container


def _reason(exc: BaseException, source: str) -> str:
    """An FFmpeg error as a log may show it: FFmpeg names the URL, password included."""
    return str(exc).replace(source, redacted(source))


class FileSource:
    """Decodes a video file and yields its due frames, never dropping any, decoding no more than they need.

    GOPs without a due frame are skipped undecoded and the others decoded only up to their last due frame
    (`pipelines.decode`); only due frames are converted. The stream time comes from the container's timestamps.
    `captured_at` is when the recording began plus the stream time: the camera's `recorded_at`, else the creation
    time in the file's header, else the moment the file was opened (and a header time later than that).
    `every_frame` decodes every frame instead (`pipeline.decode_every_frame`).
    """

    live = False

    def __init__(
        self,
        camera: CameraConfig,
        *,
        clock: Callable[[], datetime],
        metrics: PipelineMetrics,
        every_frame: bool = False,
    ) -> None:
        self.camera = camera
        self.every_frame = every_frame
        self._clock = clock
        self._decoded = metrics.frames_decoded.labels(camera.id)
        path = Path(str(camera.source))
        # The same file always gives the same violation keys, so rerunning it never duplicates a case.
        stat = path.stat() if path.is_file() else None
        self.stream_id = f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"file:{path}"

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Due frames until the file ends or `stop` is set; raises SourceError if it cannot be opened."""
        path = _existing_file(self.camera.source)
        began = self._recording_began()
        every_s = self.camera.sample_every_s
        decoded = _decoded_file(path, every_s, stop, on_decoded=self._decoded.inc, skip_gops=not self.every_frame)
        for due in decoded:
            yield Frame(self.camera.id, due.timestamp_s, began + timedelta(seconds=due.timestamp_s), due.image)

    def _recording_began(self) -> datetime:
        if self.camera.recorded_at is not None:
            return self.camera.recorded_at
        now = self._clock()
        created = container_created_at(Path(str(self.camera.source)))
        if created is None:
            log.info("camera %s: the file gives no recording time; case times count from now", self.camera.id)
            return now
        if created > now:
            log.warning(
                "camera %s: the file's header says it was recorded at %s, in the future; case times count from now "
                "(set cameras[].recorded_at)",
                self.camera.id,
                created.isoformat(),
            )
            return now
        log.info(
            "camera %s: recorded from %s (the file's header); case times are footage times",
            self.camera.id,
            created.isoformat(),
        )
        return created


class LiveSource:
    """Reads a stream or device until stopped, reopening it with exponential backoff whenever it breaks.

    A network stream is read with PyAV, decoding only what its due frames need (`pipelines.streams`); a capture
    device with OpenCV. A connection is broken when it cannot be opened, delivers nothing for `stall_timeout_s`,
    sends only what does not decode for that long, ends, or (a device) fails MAX_FAILED_READS reads in a row.
    Each reopening is logged with the camera and a counter, and counted in the metrics. Stream time comes from
    the stream's presentation timestamps where it has real ones (RTSP, HLS); MJPEG and devices get the monotonic
    clock. Either way it continues across reopenings. `captured_at` is the wall time the frame was read.
    """

    live = True

    def __init__(
        self,
        camera: CameraConfig,
        settings: PipelineConfig,
        *,
        clock: Callable[[], datetime],
        metrics: PipelineMetrics,
    ) -> None:
        self.camera = camera
        self.settings = settings
        self._clock = clock
        self._decoded = metrics.frames_decoded.labels(camera.id)
        self._reconnect_counter = metrics.source_reconnects.labels(camera.id)
        # Stream time restarts with every process: this epoch keeps violation keys of two runs apart.
        self.stream_id = f"live:{camera.source}:{clock().isoformat()}"
        self.reconnects = 0
        self._last_ts: float | None = None
        self._last_at = 0.0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Due frames until `stop` is set; never raises for a broken source, it reopens it."""
        sampler = Sampler(self.camera.sample_every_s)
        delay = self.settings.reconnect_initial_s
        while not stop.is_set():
            try:
                problem, delivered = yield from self._connect(sampler, stop)
            except SourceError as exc:
                problem, delivered = str(exc), False
            if delivered:
                delay = self.settings.reconnect_initial_s
            if stop.is_set():
                return
            self.reconnects += 1
            self._reconnect_counter.inc()
            log.warning("camera %s: %s; reconnect #%d in %.1fs", self.camera.id, problem, self.reconnects, delay)
            stop.wait(delay)
            delay = min(2 * delay, self.settings.reconnect_max_s)

    def _connect(self, sampler: Sampler, stop: threading.Event) -> Generator[Frame, None, tuple[str, bool]]:
        """Open the source and read it; returns why the connection ended and whether it delivered any frame."""
        source = self.camera.source
        if isinstance(source, str) and source_kind(source) is SourceKind.STREAM:
            container = _open_stream(
                source, timeout_s=self.settings.stall_timeout_s, rtsp_transport=self.camera.rtsp_transport
            )
            with container:
                log.info("camera %s: connected to %s", self.camera.id, redacted(source))
                return (yield from self._stream(container, sampler, stop))
        cap = _open_device(source)
        try:
            log.info("camera %s: connected to %s", self.camera.id, redacted(source))
            return (yield from self._device(cap, sampler, stop))
        finally:
            cap.release()

    def _clock_for(self, *, use_pts: bool, start: float) -> _StreamClock:
        """A connection's stream clock, continuing from where the previous connection stopped."""
        return _StreamClock(
            use_pts=use_pts,
            base=0.0 if self._last_ts is None else self._last_ts + (start - self._last_at),
            start=start,
            floor=self._last_ts,
        )

    def _stream(
        self, container: InputContainer, sampler: Sampler, stop: threading.Event
    ) -> Generator[Frame, None, tuple[str, bool]]:
        """Frames of one network connection: every packet demuxed, only what due frames need decoded."""
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90_000)
        start = time.monotonic()
        clock = self._clock_for(use_pts=stream.codec_context.name not in UNTIMED_CODECS, start=start)
        rate = stream.guessed_rate or stream.average_rate
        decoder = DueDecoder(
            stream.codec_context,
            every_s=self.camera.sample_every_s,
            frame_s=float(1 / rate) if rate else None,
            on_decoded=self._decoded.inc,
        )
        stall_s = self.settings.stall_timeout_s
        delivered = told_intra_refresh = False
        last_packet = start
        undecoded_since: float | None = None
        packets = container.demux(stream)
        while not stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                return "the stream ended", delivered
            except av.ExitError:  # FFmpeg's read timeout
                return f"no frame for {time.monotonic() - last_packet:.1f}s", delivered
            except (av.FFmpegError, OSError) as exc:
                return f"reading failed: {_reason(exc, str(self.camera.source))}", delivered
            now = last_packet = time.monotonic()
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if not decoder.has_keyframe and now - start > max(stall_s, NO_KEYFRAME_S):
                return f"no keyframe for {now - start:.1f}s", delivered

            def wants(s: float | None, at: float = now) -> bool:
                return sampler.wants_until(clock.packet_time(s, at))

            decoded = decoder.push(packet, wants)
            if not decoder.lone_keyframes and not told_intra_refresh:
                told_intra_refresh = True
                log.info(
                    "camera %s: a keyframe did not decode on its own (intra refresh?); each due frame now comes "
                    "when its GOP's picture is whole, one or two GOPs late",
                    self.camera.id,
                )
            if decoded.frames:
                undecoded_since = None
            elif decoded.fed:
                # A frame that did not decode is followed at once by the next packet, still due.
                if undecoded_since is None:
                    undecoded_since = now
                    if decoded.failed:
                        log.warning("camera %s: a frame could not be decoded; skipped", self.camera.id)
                elif now - undecoded_since > stall_s:
                    return f"frames arrive but none decoded for {now - undecoded_since:.1f}s", delivered
            for frame in decoded.frames:
                ts = clock.time(None if frame.pts is None else float(frame.pts * time_base), now)
                self._last_ts, self._last_at = ts, now
                if sampler.due(ts):
                    delivered = True
                    image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
                    yield Frame(self.camera.id, ts, self._clock(), image)
        return "stopped", delivered

    def _device(
        self, cap: cv2.VideoCapture, sampler: Sampler, stop: threading.Event
    ) -> Generator[Frame, None, tuple[str, bool]]:
        """Frames of one capture-device connection: each frame grabbed, only the due ones converted."""
        delivered = False
        start = time.monotonic()
        clock = self._clock_for(use_pts=False, start=start)
        stall_s = self.settings.stall_timeout_s
        last_read = start
        failed_reads = 0
        undecodable_since: float | None = None
        while not stop.is_set():
            if not cap.grab():
                failed_reads += 1
                now = time.monotonic()
                if now - last_read > stall_s:
                    return f"no frame for {now - last_read:.1f}s", delivered
                if failed_reads >= MAX_FAILED_READS:
                    return f"{failed_reads} reads in a row failed (device closed or undecodable)", delivered
                continue
            now = time.monotonic()
            last_read, failed_reads = now, 0
            self._decoded.inc()
            ts = clock.time(None, now)
            self._last_ts, self._last_at = ts, now
            # After a frame that did not decode, the next ones are tried at once rather than at the next due time.
            if not sampler.due(ts) and undecodable_since is None:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                if undecodable_since is None:
                    undecodable_since = now
                    log.warning("camera %s: a frame could not be decoded; skipped", self.camera.id)
                elif now - undecodable_since > stall_s:
                    return f"frames arrive but none decoded for {now - undecodable_since:.1f}s", delivered
                continue
            undecodable_since = None
            delivered = True
            yield Frame(self.camera.id, ts, self._clock(), image)
        return "stopped", delivered


class _StreamClock:
    """Stream time for one connection of a live source, continuing where the previous connection stopped.

    It follows the stream's presentation timestamps while they increase (the first frame may have none); a
    stream without usable ones (none, or restarting) falls back to the monotonic clock for the rest of the
    connection. It never runs backwards.
    """

    def __init__(self, *, use_pts: bool, base: float, start: float, floor: float | None) -> None:
        self._use_pts = use_pts
        self._base = base
        self._start = start
        self._floor = floor
        self._first_pts: float | None = None
        self._last_pts = -1.0
        self._untimed_start = False

    def time(self, pts: float | None, now: float) -> float:
        """The stream time of a frame with timestamp `pts` (seconds; None: none) read at monotonic time `now`."""
        if self._use_pts and pts is None and self._last_pts < 0 and not self._untimed_start:
            # An RTSP connection's first frame often comes before the stream's first timestamp: it starts it.
            self._untimed_start = True
            ts = self._base
        elif self._use_pts and pts is not None and pts > self._last_pts:
            if self._first_pts is None:
                self._first_pts = pts
            ts = self._base + pts - self._first_pts
            self._last_pts = pts
        else:
            self._use_pts = False
            ts = self._base + now - self._start
        if self._floor is not None:
            ts = max(ts, self._floor + 1e-3)
        self._floor = ts
        return ts

    def packet_time(self, pts: float | None, now: float) -> float:
        """The stream time a frame in a packet with timestamp `pts` would get, the packet not yet decoded; the
        connection's first timestamp, from a packet or a frame, is its stream time's start."""
        if self._use_pts and pts is not None and self._first_pts is None:
            self._first_pts = pts
        if not self._use_pts:
            ts = self._base + now - self._start
        elif pts is None or self._first_pts is None:
            ts = self._base  # a packet the stream does not time: as early as may be
        else:
            ts = self._base + pts - self._first_pts
        return ts if self._floor is None else max(ts, self._floor + 1e-3)


def open_source(
    camera: CameraConfig, settings: PipelineConfig, *, clock: Callable[[], datetime], metrics: PipelineMetrics
) -> FileSource | LiveSource:
    """The source for a camera: a FileSource for a file, a LiveSource for a stream or device."""
    if is_file_source(camera.source):
        return FileSource(camera, clock=clock, metrics=metrics, every_frame=settings.decode_every_frame)
    return LiveSource(camera, settings, clock=clock, metrics=metrics)


def probe_source(source: str | int, *, timeout_s: float, rtsp_transport: str = "tcp") -> None:
    """Open a source and decode one frame, as a run would first do; raises SourceError saying what failed.

    A file is decoded by the same reader a run uses, a stream too: it gets `timeout_s` to connect and to send its
    first keyframe, so a dead camera fails the probe instead of blocking it.
    """
    if is_file_source(source):
        if next(_decoded_file(_existing_file(source), 1.0, threading.Event()), None) is None:
            raise SourceError(f"{source} opened but no frame could be decoded")
        return
    if isinstance(source, str) and source_kind(source) is SourceKind.STREAM:
        _probe_stream(source, timeout_s=timeout_s, rtsp_transport=rtsp_transport)
        return
    cap = _open_device(source)
    try:
        ok, image = cap.read()
    finally:
        cap.release()
    if not ok or image is None:
        raise SourceError(f"{redacted(source)} opened but no frame could be decoded")


def _probe_stream(source: str, *, timeout_s: float, rtsp_transport: str) -> None:
    deadline = time.monotonic() + timeout_s
    with _open_stream(source, timeout_s=timeout_s, rtsp_transport=rtsp_transport) as container:
        stream = container.streams.video[0]
        decoder = DueDecoder(stream.codec_context, every_s=timeout_s)
        try:
            for packet in container.demux(stream):
                if packet.size and decoder.push(packet, lambda _: True).frames:
                    return
                if time.monotonic() > deadline:
                    break
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{redacted(source)}: {_reason(exc, source)}") from exc
    raise SourceError(f"{redacted(source)} opened but no frame could be decoded within {timeout_s:g}s")


def file_duration_s(source: str | int) -> float | None:
    """A video file's length in seconds from its header, or None where it has none (or is no file)."""
    if not is_file_source(source) or not Path(str(source)).is_file():
        return None
    cap = cv2.VideoCapture(str(source))
    try:
        fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return count / fps if fps > 0 and count > 0 else None
    finally:
        cap.release()
