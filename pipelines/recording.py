"""When a recorded video file began: its container's creation time (ISO base media: MP4, MOV, 3GP)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final

#: ISO base media times count seconds from this instant.
_EPOCH: Final = datetime(1904, 1, 1, tzinfo=UTC)
#: Creation times before this are an encoder's placeholder (many write 0), not a recording time.
_EARLIEST: Final = datetime(1990, 1, 1, tzinfo=UTC)


def _boxes(f: BinaryIO, end: int) -> list[tuple[bytes, int, int]]:
    """The (type, payload offset, payload end) of each box from the file's position up to `end`."""
    out = []
    while f.tell() + 8 <= end:
        start = f.tell()
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", f.read(8))
            header = 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            break
        out.append((kind, start + header, start + size))
        f.seek(start + size)
    return out


def container_created_at(path: Path) -> datetime | None:
    """The creation time in the movie header (`moov/mvhd`) of an MP4/MOV file, or None when it has none.

    Cameras and recorders write the time recording began there (UTC); files whose header is missing, zero or
    implausibly early, and files of other containers, give None.
    """
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            for kind, start, end in _boxes(f, size):
                if kind != b"moov":
                    continue
                f.seek(start)
                for inner, payload, inner_end in _boxes(f, end):
                    if inner != b"mvhd" or inner_end - payload < 12:
                        continue
                    f.seek(payload)
                    version = f.read(1)[0]
                    f.seek(3, 1)  # flags
                    fmt = ">Q" if version == 1 else ">I"
                    (seconds,) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
                    created = _EPOCH + timedelta(seconds=seconds)
                    return created if created >= _EARLIEST else None
                return None
    except (OSError, struct.error, OverflowError):
        return None
    return None
