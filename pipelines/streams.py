"""Read a live network stream (RTSP, HLS, MJPEG over HTTP) with PyAV, decoding only what its due frames need.

Every packet is demuxed (cheap: no decoding) and the packets since the last keyframe are held, compressed. A live
stream's GOP cannot be known ahead, so it is observed: while keyframes come at least once every `sample_every_s`,
a due frame is taken from the next keyframe, decoded alone (at most one GOP after it was due); when they come
less often, the held GOP is decoded from its keyframe up to the due frame, which then comes exactly when due. A
stream whose keyframes give no frame decoded alone (intra refresh: they mark where a sweep of intra blocks
starts refreshing the picture) is read the second way, each due frame coming once its GOP's picture is whole.
Either way only a fraction of the frames is decoded when frames are due less often than every frame (one every
2 s against 25 fps is the CCTV norm), and only the due frames are converted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import av
from av.container import InputContainer
from av.video.codeccontext import VideoCodecContext

from pipelines.decode import EPS_S, MAX_HELD_BYTES


def open_stream(url: str, *, timeout_s: float, rtsp_transport: str = "tcp") -> InputContainer:
    """Open a network stream; raises av.FFmpegError or OSError when it cannot be opened.

    `timeout_s` bounds connecting and every later read: a dead or silent server fails a read instead of blocking
    it forever. RTSP goes over `rtsp_transport` (tcp survives lossy networks and NAT; udp is what some old
    cameras only speak).
    """
    options = {"rtsp_transport": str(rtsp_transport)} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
    return av.open(url, options=options, timeout=(timeout_s, timeout_s))


#: Codecs whose packets carry no timestamps of their own: FFmpeg makes some up, so the reader's clock is used.
UNTIMED_CODECS: Final = frozenset({"mjpeg"})


@dataclass(slots=True)
class Decoded:
    """What one packet made the decoder do: the new frames (presentation order), whether packets were fed to the
    decoder (frames are owed) and whether any failed to decode."""

    frames: list[av.VideoFrame] = field(default_factory=list)
    fed: bool = False
    failed: bool = False


class DueDecoder:
    """Decodes one connection's video packets only as far as due frames need (see the module's docstring).

    `push` takes each packet in the order it arrives, with `wants(s)`: whether a frame at `s` seconds of the
    packet's timestamps (None: not known) would be due. A packet without a timestamp is given the previous
    packet's plus `frame_s` (a frame's duration, when the stream says). A GOP holding more than `max_held_bytes`
    of packets is fed to the decoder as it arrives instead of being held.
    """

    def __init__(
        self,
        codec: VideoCodecContext,
        *,
        every_s: float,
        frame_s: float | None = None,
        on_decoded: Callable[[], None] = lambda: None,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self._codec = codec
        self._every_s = every_s
        self._frame_s = frame_s
        self._on_decoded = on_decoded
        self._max_held_bytes = max_held_bytes
        self._held: list[av.Packet[Any]] = []
        self._held_bytes = 0
        self._has_keyframe = False
        self._keyframe_s: float | None = None
        self._gop_s: float | None = None
        self._synced = False
        self._keyframe_shown = False
        self._lone_keyframes = True
        self._last_s: float | None = None
        self._last_pts: int | None = None

    @property
    def has_keyframe(self) -> bool:
        """Whether a keyframe arrived yet: no frame of a connection can be decoded before its first."""
        return self._has_keyframe

    @property
    def lone_keyframes(self) -> bool:
        """False once a keyframe decoded by itself gave no frame (intra refresh: the stream flags recovery points
        as keyframes, and the decoder shows nothing until a sweep of intra blocks has refreshed the picture); due
        frames are then decoded from their GOP's keyframe onwards and come when the picture is whole: one GOP late,
        two where the decoder recovers only in the next sweep."""
        return self._lone_keyframes

    def push(self, packet: av.Packet[Any], wants: Callable[[float | None], bool]) -> Decoded:
        """Take the next packet; decode what a due frame needs and return the frames that decoding produced."""
        s = self._seconds(packet)
        ended = Decoded()
        if packet.is_keyframe:
            if self._synced:  # the frames the decoder still holds back (B-frames, threads) are the GOP's last
                ended = self._feed([None])
            if self._keyframe_s is not None and s is not None and s > self._keyframe_s:
                self._gop_s = s - self._keyframe_s
            self._has_keyframe, self._keyframe_s = True, s
            self._held, self._held_bytes, self._synced, self._keyframe_shown = [], 0, False, False
        elif not self._has_keyframe:
            return Decoded()  # before the connection's first keyframe nothing can be decoded
        self._held.append(packet)
        self._held_bytes += packet.size
        if not wants(s):
            out = self._catch_up() if self._held_bytes > self._max_held_bytes else Decoded()
        elif not self._synced and self._keyframes_suffice(s):
            # The keyframe comes at most one GOP after the due time: decode it alone rather than its GOP.
            out = self._keyframe_alone() if len(self._held) == 1 else Decoded()
        else:
            out = self._catch_up()
        # Draining is not feeding: a GOP's end that yields nothing says nothing about what arrives.
        return Decoded(ended.frames + out.frames, out.fed, ended.failed or out.failed)

    def _seconds(self, packet: av.Packet[Any]) -> float | None:
        if packet.pts is None and packet.dts is None and self._last_pts is not None and self._frame_s:
            # RTSP packets of a frame sent with its parameter sets often lack a timestamp: the frame after the
            # previous one has it, or its frame would have to be timed by the reader's clock.
            packet.pts = self._last_pts + max(1, round(self._frame_s / float(packet.time_base or 1)))
        t = packet.pts if packet.pts is not None else packet.dts
        if t is not None and packet.time_base is not None:
            self._last_pts, self._last_s = t, float(t * packet.time_base)
        return self._last_s

    def _keyframes_suffice(self, s: float | None) -> bool:
        if not self._lone_keyframes or self._gop_s is None or self._gop_s > self._every_s + EPS_S:
            return False
        # A keyframe overdue by more than a sampling period means the camera changed its GOP: decode this one.
        return s is None or self._keyframe_s is None or s - self._keyframe_s < self._every_s - EPS_S

    def _keyframe_alone(self) -> Decoded:
        """Decode the GOP's keyframe by itself, draining the decoder (B-frame and thread delays hold it back)."""
        self._codec.flush_buffers()
        out = self._feed([self._held[0], None])
        self._synced = False  # drained: the rest of the GOP, if ever needed, is decoded from the keyframe again
        self._keyframe_shown = bool(out.frames)
        if out.frames or out.failed:
            return out
        self._lone_keyframes = False
        return self._catch_up()

    def _catch_up(self) -> Decoded:
        """Feed the decoder the held packets, from the GOP's keyframe if it is not fed up to here already."""
        skip = 0
        if not self._synced:
            self._codec.flush_buffers()  # the held packets start with the keyframe: the decoder starts afresh
            # The keyframe's frame, the first out of a fresh decoder, was shown when it was decoded alone.
            skip = int(self._keyframe_shown)
        out = self._feed(self._held, skip=skip)
        self._held, self._held_bytes, self._synced = [], 0, True
        return out

    def _feed(self, packets: Sequence[av.Packet[Any] | None], *, skip: int = 0) -> Decoded:
        """Decode `packets`, leaving out the first `skip` frames (counted as decoded all the same)."""
        out = Decoded(fed=True)
        for packet in packets:
            try:
                frames = self._codec.decode(packet)
            except av.InvalidDataError:
                out.failed = True
                continue
            for frame in frames:
                self._on_decoded()
                if skip:
                    skip -= 1
                else:
                    out.frames.append(frame)
        return out
