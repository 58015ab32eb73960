"""When a recorded video file began: the creation time its container states (MP4/MOV `mvhd`, Matroska, ...)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import av

#: Creation times before this are an encoder's placeholder, not a recording time.
_EARLIEST: Final = datetime(1990, 1, 1, tzinfo=UTC)


def container_created_at(path: Path) -> datetime | None:
    """The creation time in the file's container header, as FFmpeg reads it, or None when it states none.

    Cameras and recorders write the time recording began there (UTC); a file that cannot be opened, states no
    time or an implausibly early one gives None.
    """
    try:
        with av.open(str(path)) as container:
            stated = container.metadata.get("creation_time")
    except (av.FFmpegError, OSError):
        return None
    if not stated:
        return None
    try:
        created = datetime.fromisoformat(stated)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created if created >= _EARLIEST else None
