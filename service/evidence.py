"""Content-addressed evidence storage behind a small interface, with a local-folder implementation."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Final, Protocol

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class EvidenceNotFoundError(LookupError):
    """The store holds no bytes under a digest the database refers to."""


class EvidenceStore(Protocol):
    """Where evidence bytes live, keyed by their SHA-256; an S3-compatible store can implement it later.

    `put` must be idempotent and must not return before the bytes are durable: the case service commits the
    database row that refers to them only after `put` returns.
    """

    def put(self, data: bytes) -> str:
        """Store `data` and return its SHA-256 hex digest."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`; raises `EvidenceNotFoundError`."""
        ...

    def delete(self, digest: str) -> None:
        """Forget the bytes under `digest` (nothing happens when there are none)."""
        ...


def sha256_hex(data: bytes) -> str:
    """The key a store files `data` under."""
    return hashlib.sha256(data).hexdigest()


def image_type(data: bytes) -> str | None:
    """`image/jpeg` or `image/png` for bytes that decode completely as one, else None: another format, a
    truncated or corrupt image, a signature followed by something else, or a decompression bomb.

    The format's decoder is called directly, not through `Image.open`: ultralytics, imported in the same
    process by the pipeline that embeds this service, wraps `Image.open` to fetch a HEIF plugin at run time.
    """
    decoder: type[ImageFile.ImageFile]
    if data.startswith(b"\xff\xd8\xff"):
        kind, decoder = JPEG, JpegImagePlugin.JpegImageFile
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind, decoder = PNG, PngImagePlugin.PngImageFile
    else:
        return None
    try:
        with decoder(io.BytesIO(data)) as image:
            if image.width * image.height > (Image.MAX_IMAGE_PIXELS or 0):
                return None
            image.load()
    except Exception:  # any decoder error means the bytes are not an image we store
        return None
    return kind


class LocalEvidenceStore:
    """Files under `root/ab/cd/<sha256>`, written atomically (temporary file, fsync, rename).

    A file whose database commit then fails stays behind as an orphan. That is harmless: it is named by its
    content, so a retried post reuses it, and nothing in the database points at a file that is not there.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        """Where the bytes with this digest live."""
        if not _DIGEST.match(digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store `data` (once) and return its digest."""
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.is_file():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """The stored bytes."""
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            raise EvidenceNotFoundError(digest) from None

    def delete(self, digest: str) -> None:
        """Remove the file, if there is one."""
        self.path_for(digest).unlink(missing_ok=True)
