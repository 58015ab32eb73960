"""Reviewed cases as a YOLO dataset: confirmed boxes as labels, rejected ones as hard negatives, each image
labelling only its case's class (see `reviewed_manifest` and detector.train's partial labels)."""

from __future__ import annotations

import filecmp
import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from detector.provenance import SOURCE_SEPARATOR
from detector.taxonomy import TAXONOMY

#: Exported images are named `reviewed__case-ID-DIGEST.jpg` (`image_stem`): one source for mosaics (see
#: detector.train).
SOURCE = "reviewed"
MANIFEST = "reviewed.json"
#: Rejections whose reason starts with one of these (case-insensitive) become hard negatives by default. The
#: console stores its reasons in English: "wrong object" says the box does not hold its class; "not a
#: violation", "permitted" and "duplicate" are about the rule, not the detection, and teaching the model that
#: such a (correctly seen) car or stall is background would make it miss the next one.
DEFAULT_NEGATIVE_REASONS: tuple[str, ...] = ("wrong object",)


@dataclass(frozen=True, slots=True)
class ReviewedImage:
    """One reviewed case for training: its clean scene (JPEG), its class and box (x1, y1, x2, y2 normalised)."""

    case_id: int
    confirmed: bool
    label: str
    box: tuple[float, float, float, float]
    reason: str | None
    image: bytes


@dataclass
class ExportReport:
    """What went into the export, and the cases left out with why."""

    positives: int = 0
    negatives: int = 0
    skipped: dict[int, str] = field(default_factory=dict)


def image_stem(case_id: int, image: bytes) -> str:
    """The file stem of a reviewed case's image: its case id, for people, and the start of the image's SHA-256, so
    that exports of two case databases (whose ids overlap) never overwrite each other when merged, while a case
    exported twice (overlapping --since windows) stays one image."""
    return f"{SOURCE}{SOURCE_SEPARATOR}case-{case_id}-{hashlib.sha256(image).hexdigest()[:12]}"


def _xywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _is_negative(reason: str | None, negative_reasons: Sequence[str]) -> bool:
    text = (reason or "").strip().lower()
    return any(text.startswith(prefix.strip().lower()) for prefix in negative_reasons)


def write_reviewed_dataset(
    cases: Iterable[ReviewedImage], out: Path, *, negative_reasons: Sequence[str] = DEFAULT_NEGATIVE_REASONS
) -> ExportReport:
    """Write `out/images/train`, `out/labels/train`, `out/reviewed.json` and `out/data.yaml` (val is the train
    folder: an export is small, and its val only shows the confirmed boxes are learnt).

    A confirmed case's label file holds its box; a rejected one's is empty, and the manifest marks the box as
    a hard negative. The manifest gives each image the one class it labels and the box that class is taught
    in, so that training ignores every other class on the frame, and that class away from the box.
    """
    report = ExportReport()
    images, labels = out / "images" / "train", out / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    for case in cases:
        if case.label not in TAXONOMY:
            report.skipped[case.case_id] = f"label {case.label!r} is not a taxonomy class"
            continue
        if not case.confirmed and not _is_negative(case.reason, negative_reasons):
            report.skipped[case.case_id] = f"rejected for a reason that is no hard negative: {case.reason!r}"
            continue
        name = image_stem(case.case_id, case.image)
        (images / f"{name}.jpg").write_bytes(case.image)
        xywh = " ".join(f"{v:.6f}" for v in _xywh(case.box))
        row = f"{TAXONOMY.index(case.label)} {xywh}\n" if case.confirmed else ""
        (labels / f"{name}.txt").write_text(row, encoding="utf-8")
        manifest[f"{name}.jpg"] = {
            "case": case.case_id,
            "decision": "confirmed" if case.confirmed else "rejected",
            "reason": case.reason,
            "labels": [case.label],
            "box": [round(v, 6) for v in case.box],
            "hard_negative": not case.confirmed,
        }
        report.positives += case.confirmed
        report.negatives += not case.confirmed
    (out / MANIFEST).write_text(json.dumps({"images": manifest}, indent=1, ensure_ascii=False), encoding="utf-8")
    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/train",
        "names": dict(enumerate(TAXONOMY)),
        "reviewed": [MANIFEST],
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return report


@dataclass(frozen=True, slots=True)
class ReviewedLabels:
    """Per-image partial labels of reviewed exports: the images they name, and each hard negative's box
    (class index, x, y, w, h normalised), which training carries through augmentation like a label."""

    images: frozenset[str]
    negatives: dict[str, tuple[int, tuple[float, float, float, float]]]


def reviewed_manifest(root: Path, manifests: Sequence[str]) -> ReviewedLabels:
    """Read the manifests (paths relative to the dataset's `root`) a data.yaml names under `reviewed`."""
    images: set[str] = set()
    negatives: dict[str, tuple[int, tuple[float, float, float, float]]] = {}
    for manifest in manifests:
        entries = json.loads((root / manifest).read_text(encoding="utf-8"))["images"]
        for name, entry in entries.items():
            images.add(name)
            if entry["hard_negative"]:
                negatives[name] = (TAXONOMY.index(entry["labels"][0]), _xywh(entry["box"]))
    return ReviewedLabels(frozenset(images), negatives)


def merge_exports(exports: Sequence[Path], out: Path) -> list[str]:
    """Copy the images and labels of `export-reviewed` folders into the built dataset `out`'s train split,
    write their merged manifest as `out/reviewed.json`, and return their train.txt entries. A case exported
    twice (overlapping --since windows) is one image; two different images of one name (exports of two
    databases written before names carried the image's digest) are refused rather than one lost."""
    merged: dict[str, object] = {}
    origin: dict[str, Path] = {}
    for export in exports:
        manifest = export / MANIFEST
        if not manifest.is_file():
            raise ValueError(f"{export} holds no {MANIFEST}: not a folder written by streetwatch export-reviewed")
        for name, entry in json.loads(manifest.read_text(encoding="utf-8"))["images"].items():
            stem = Path(name).stem
            image = export / "images" / "train" / name
            first = origin.setdefault(name, image)
            if first != image and not filecmp.cmp(first, image, shallow=False):
                raise ValueError(
                    f"{first} and {image} are different images of one name: exports of two case databases "
                    "made before names carried the image's digest; export one of them again"
                )
            shutil.copyfile(image, out / "images" / "train" / name)
            shutil.copyfile(export / "labels" / "train" / f"{stem}.txt", out / "labels" / "train" / f"{stem}.txt")
            merged[name] = entry
    (out / MANIFEST).write_text(json.dumps({"images": merged}, indent=1, ensure_ascii=False), encoding="utf-8")
    return [f"./images/train/{name}" for name in merged]
