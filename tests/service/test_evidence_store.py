"""The local evidence store: content-addressed, idempotent, atomic; and the image check that guards it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from case_helpers import jpeg, png

from service.evidence import EvidenceNotFoundError, EvidenceStore, LocalEvidenceStore, image_type


def test_put_files_bytes_under_their_sha256_once(tmp_path: Path) -> None:
    store: EvidenceStore = LocalEvidenceStore(tmp_path / "evidence")
    data = jpeg(3)
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put(data) == digest
    assert store.get(digest) == data
    files = [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()]
    assert files == [tmp_path / "evidence" / digest[:2] / digest[2:4] / digest]


def test_delete_forgets_the_bytes_and_tolerates_a_second_call(tmp_path: Path) -> None:
    store: EvidenceStore = LocalEvidenceStore(tmp_path)
    kept, dropped = store.put(jpeg(1)), store.put(jpeg(2))
    store.delete(dropped)
    store.delete(dropped)
    with pytest.raises(EvidenceNotFoundError):
        store.get(dropped)
    assert store.get(kept) == jpeg(1)


def test_unknown_or_malformed_digest(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path)
    with pytest.raises(EvidenceNotFoundError):
        store.get("0" * 64)
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.get("../../etc/passwd")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (jpeg(), "image/jpeg"),
        (png(), "image/png"),
        (b"GIF89a\x01\x00", None),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"\xff\xd8", None),
        (b"", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (jpeg()[:20] + b"<html><script>alert(1)</script></html>", None),
        (jpeg(size=64)[:-200], None),
        (png()[:40] + b"<html></html>", None),
    ],
    ids=[
        "jpeg",
        "png",
        "gif",
        "png signature alone",
        "truncated jpeg",
        "empty",
        "svg",
        "jpeg header then html",
        "jpeg cut short",
        "png header then html",
    ],
)
def test_image_type_decodes_the_whole_image(data: bytes, content_type: str | None) -> None:
    assert image_type(data) == content_type
