"""Measure a model on any YOLO dataset whose class names are taxonomy names, matching classes by name."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detector.dataset import IMAGE_SUFFIXES
from detector.model import Detector, ModelError
from detector.pretrained import boxes_only
from detector.taxonomy import TAXONOMY

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """The dataset file or its class names cannot be evaluated."""


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """One class's scores on the dataset."""

    name: str
    images: int
    instances: int
    precision: float
    recall: float
    ap50: float
    ap50_95: float
    at_confidence: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Precision and recall (IoU 0.5) when only boxes of at least a confidence are kept, keyed by it."""


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Per-class and overall scores of one model on one dataset."""

    model: str
    data: str
    imgsz: int
    classes: list[ClassMetrics]
    overall: ClassMetrics

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _names(data: dict[str, Any], path: Path) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetError(f"{path}: 'names' must be a list or a mapping of class index to name")


def _val_images(data: dict[str, Any], path: Path) -> list[Path]:
    root = Path(data.get("path") or path.parent)
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    val = data.get("val")
    if not val:
        raise DatasetError(f"{path}: no 'val' split")
    images: list[Path] = []
    for entry in val if isinstance(val, list) else [val]:
        p = root / entry
        if p.is_dir():
            images += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
            images += [(p.parent / ln).resolve() if ln.startswith("./") else Path(ln) for ln in lines]
        else:
            raise DatasetError(f"{path}: val entry {p} does not exist")
    if not images:
        raise DatasetError(f"{path}: the val split holds no images")
    return images


def _label_for(image: Path) -> Path:
    parts = list(image.parts)
    i = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")


def _label_rows(image: Path) -> list[list[str]]:
    label = _label_for(image)
    rows = label.read_text(encoding="utf-8").splitlines() if label.is_file() else []
    return [r.split() for r in rows if r.strip()]


def _remapped_view(images: list[Path], mapping: dict[int, int], model_names: list[str], tmp: Path) -> Path:
    """A dataset in the model's class indices: links to the images and rewritten labels."""
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    for n, image in enumerate(images):
        link = tmp / "images" / f"{n:06d}_{image.name}"
        link.symlink_to(image.resolve())
        out = [f"{mapping[int(r[0])]} {' '.join(r[1:5])}" for r in _label_rows(image) if int(r[0]) in mapping]
        (tmp / "labels" / f"{link.stem}.txt").write_text("\n".join(out) + ("\n" if out else ""), encoding="utf-8")
    view = {"path": str(tmp), "train": "images", "val": "images", "names": dict(enumerate(model_names))}
    target = tmp / "data.yaml"
    target.write_text(yaml.safe_dump(view), encoding="utf-8")
    return target


def _curve_index(confidence: float) -> int:
    """Index of `confidence` on ultralytics' precision/recall curves (1000 points over 0..1)."""
    return round(confidence * 999)


def evaluate(
    data_yaml: Path,
    *,
    model: Path | None,
    state_dir: Path,
    imgsz: int = 512,
    device: str = "cpu",
    batch: int = 16,
    at_confidence: tuple[float, ...] = (),
    classes: tuple[str, ...] = (),
) -> EvalReport:
    """Validate `model` (default: the shipped one) on the val split of `data_yaml`.

    The dataset's class indices may differ from the model's: classes are matched by name. Every class the
    val labels hold must be a taxonomy class the model knows; the model may know others (a COCO teacher).
    `at_confidence` adds each class's precision and recall at those confidence thresholds; `classes`, when
    given, scores only those (the labels of the others are left out).
    """
    try:
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{data_yaml} does not exist") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{data_yaml}: not a YOLO data file")
    names = _names(data, data_yaml)
    foreign = [n for n in names if n not in TAXONOMY]
    if foreign:
        raise DatasetError(f"{data_yaml}: classes {foreign} are not taxonomy names ({', '.join(TAXONOMY)})")
    stray = [c for c in classes if c not in names]
    if stray:
        raise DatasetError(f"{data_yaml}: the dataset has no classes {stray}")
    with tempfile.TemporaryDirectory(prefix="sw-eval-", dir=state_dir) as tmp:
        loadable = boxes_only(model, Path(tmp) / model.name) if model is not None and model.suffix == ".pt" else model
        detector = Detector(loadable, state_dir=state_dir, imgsz=imgsz, device=device, taxonomy_only=False)
    model_names = list(detector.info.names)
    images = _val_images(data, data_yaml)
    scored = set(classes or names)
    used = sorted({names[int(r[0])] for image in images for r in _label_rows(image)} & scored)
    unknown = [n for n in used if n not in model_names]
    if unknown:
        raise ModelError(f"{detector.info.path}: the model has no classes {unknown}, which the val labels hold")
    mapping = {i: model_names.index(n) for i, n in enumerate(names) if n in model_names and n in scored}
    with tempfile.TemporaryDirectory(prefix="sw-eval-", dir=state_dir) as tmp:
        view = _remapped_view(images, mapping, model_names, Path(tmp))
        metrics = detector.validate(view, runs_dir=Path(tmp) / "runs", batch=batch)
    box = metrics.box
    per_class = []
    for row, cls in enumerate(metrics.ap_class_index):
        p, r, ap50, ap = box.class_result(row)
        per_class.append(
            ClassMetrics(
                name=model_names[int(cls)],
                images=int(metrics.nt_per_image[cls]),
                instances=int(metrics.nt_per_class[cls]),
                precision=float(p),
                recall=float(r),
                ap50=float(ap50),
                ap50_95=float(ap),
                at_confidence={
                    f"{c:g}": (float(box.p_curve[row, _curve_index(c)]), float(box.r_curve[row, _curve_index(c)]))
                    for c in at_confidence
                },
            )
        )
    total = sum(c.instances for c in per_class)
    overall = ClassMetrics("all", len(images), total, float(box.mp), float(box.mr), float(box.map50), float(box.map))
    return EvalReport(str(model or detector.info.path), str(data_yaml), imgsz, per_class, overall)
