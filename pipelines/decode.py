"""Decode a video file only as far as its due frames need: whole GOPs skipped, each decoded up to its last due frame.

A frame can be decoded only from the keyframe that opens its group of pictures (GOP). The packets of one GOP are
demuxed (cheap, no decoding) and held until the next keyframe shows where the GOP ends; a GOP in which no frame
is due is dropped undecoded, and one that holds due frames is decoded from its keyframe up to the last of them.
The frames yielded are exactly those a full decode would sample, at a fraction of the cost when frames are due
less often than keyframes come (one frame every 2 s against a keyframe every 1-4 s is the CCTV norm).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

#: Timestamps closer than this are the same instant (the sampler's own tolerance).
EPS_S: Final = 1e-6
#: A GOP holding more compressed data than this is decoded as it arrives instead of being held whole
#: (a file with one keyframe at its start would otherwise be held in memory entire). 32 MB is minutes of a
#: 1080p camera stream.
MAX_HELD_BYTES: Final = 32 * 2**20


class DecodeError(RuntimeError):
    """The file is not a video PyAV can decode."""


class Sampler:
    """Decides which frames are due: one every `every_s` seconds of stream time, without drift."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._next: float | None = None

    def wants_until(self, last_s: float) -> bool:
        """Whether a frame at or before `last_s` could be due (the first frame always is)."""
        return self._next is None or last_s >= self._next - EPS_S

    def due(self, timestamp_s: float) -> bool:
        """Whether the frame at `timestamp_s` should be analysed (the first frame always is)."""
        if self._next is not None and timestamp_s < self._next - EPS_S:
            return False
        self._next = (self._next if self._next is not None else timestamp_s) + self.every_s
        while self._next <= timestamp_s + EPS_S:
            self._next += self.every_s
        return True


@dataclass(frozen=True, slots=True)
class DueFrame:
    """A due frame: its stream time (seconds from the stream's start) and its BGR pixels."""

    timestamp_s: float
    image: npt.NDArray[np.uint8]


class _Gop:
    """The packets of one GOP, in decode order, with the latest presentation time among them."""

    def __init__(self) -> None:
        self.packets: list[av.Packet[Any]] = []
        self.last_s = float("-inf")
        self.size = 0

    def add(self, packet: av.Packet[Any], at_s: float) -> None:
        self.packets.append(packet)
        self.last_s = max(self.last_s, at_s)
        self.size += packet.size


class _NotRandomAccessError(Exception):
    """A keyframe the file flags did not decode on its own: its first frame out was not the keyframe's."""


def due_frames(
    path: Path,
    every_s: float,
    stop: threading.Event,
    *,
    on_decoded: Callable[[], None] = lambda: None,
    max_held_bytes: int = MAX_HELD_BYTES,
    skip_gops: bool = True,
) -> Iterator[DueFrame]:
    """The frames of the video file at `path` that fall due every `every_s` stream seconds, until `stop` is set.

    `on_decoded` is called for every frame the decoder actually produced (the cost the skipping saves). A GOP
    holding more than `max_held_bytes` of packets is decoded as it arrives. `skip_gops` False decodes every frame
    instead, the plain way: the same frames at several times the cost, to check the skipping against. A file
    whose keyframes cannot be decoded on their own (intra refresh: the flagged frames are recovery points, and
    the decoder shows nothing until a sweep of intra blocks has refreshed the picture) is decoded the plain way
    from its start, once that shows, yielding only frames after those already yielded.

    Raises:
        DecodeError: the file cannot be opened as a video.
    """
    sampler = Sampler(every_s)
    if skip_gops:
        try:
            yield from _decode(path, sampler, stop, on_decoded, max_held_bytes=max_held_bytes)
            return
        except _NotRandomAccessError:
            log.info("%s: its keyframes do not decode on their own (intra refresh?): decoding every frame", path)
    yield from _decode(path, sampler, stop, on_decoded, max_held_bytes=None)


def _decode(
    path: Path,
    sampler: Sampler,
    stop: threading.Event,
    on_decoded: Callable[[], None],
    *,
    max_held_bytes: int | None,
) -> Iterator[DueFrame]:
    """`due_frames`' work, GOPs skipped (`max_held_bytes` set) or every frame decoded (None)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise DecodeError(f"{path} is not a readable video: {exc}") from exc
    with container:
        if not container.streams.video:
            raise DecodeError(f"{path} holds no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90_000)
        start = stream.start_time or 0
        codec = stream.codec_context

        def seconds(pts: int) -> float:
            return float((pts - start) * time_base)

        if max_held_bytes is None:
            for frame in container.decode(stream):
                if stop.is_set():
                    return
                on_decoded()
                if frame.pts is not None and sampler.due(seconds(frame.pts)):
                    yield DueFrame(seconds(frame.pts), np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
            return

        def decode(gop: _Gop, *, whole: bool) -> Iterator[DueFrame]:
            # A GOP opens with a keyframe: the decoder starts afresh there, and the first frame out must be the
            # keyframe's. A part of a GOP too long to hold continues from the part before it, so every packet is
            # fed and the decoder is neither reset nor drained; a whole GOP is fed only up to its last due frame,
            # then drained of the frames it delays.
            keyframe_pts = None
            if gop.packets[0].is_keyframe:
                codec.flush_buffers()
                keyframe_pts = gop.packets[0].pts
            for packet in [*gop.packets, None] if whole else gop.packets:
                if whole and (stop.is_set() or not sampler.wants_until(gop.last_s)):
                    return
                for frame in codec.decode(packet):
                    if keyframe_pts is not None and frame.pts is not None:
                        if frame.pts != keyframe_pts:
                            raise _NotRandomAccessError
                        keyframe_pts = None
                    on_decoded()
                    if frame.pts is not None and sampler.due(seconds(frame.pts)):
                        yield DueFrame(seconds(frame.pts), np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
            if keyframe_pts is not None and not stop.is_set():
                raise _NotRandomAccessError

        gop = _Gop()
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if packet.pts is None:  # the demuxer's end-of-stream marker, or a packet without a time
                continue
            if packet.is_keyframe and gop.packets:
                if sampler.wants_until(gop.last_s):
                    yield from decode(gop, whole=True)
                gop = _Gop()
            gop.add(packet, seconds(packet.pts))
            if gop.size > max_held_bytes:
                yield from decode(gop, whole=False)
                gop = _Gop()
        if gop.packets and sampler.wants_until(gop.last_s):
            yield from decode(gop, whole=True)
