"""Pseudo-labels: boxes a trusted teacher model adds for classes a source never annotated.

The merged sources each label only their own classes, so a garbage photo full of unlabelled cars and people
teaches the model that cars and people are background. A COCO-pretrained teacher fills that gap: on each
source it adds boxes only for the classes that source does not label, at a confidence chosen by measuring
the teacher on the sources that do label them (datasets/README.md). The teacher's raw predictions are
cached per source image, so a rebuild with another threshold or image size does not run it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from detector.runtime import prepare_runtime
from detector.taxonomy import TAXONOMY

log = logging.getLogger(__name__)

#: Predictions down to this confidence are cached, so any threshold above it can be applied later.
CACHE_FLOOR = 0.05
#: A teacher box overlapping a box the label file already holds (any class) by more than this is dropped:
#: the source's annotator, or an earlier teacher, already decided what that object is.
OVERLAP_IOU = 0.5
#: Teacher boxes of different classes on one object (a van as car and as truck): the less confident goes.
SAME_OBJECT_IOU = 0.7


class Prediction(NamedTuple):
    """One teacher box: its class name, confidence and normalised [x1, y1, x2, y2]."""

    name: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class PseudoTarget:
    """One image to pseudo-label: the source image, its content hash, its built label file, and the
    teacher classes (teacher name -> taxonomy name) that its source does not annotate."""

    image: Path
    digest: str
    label: Path
    classes: dict[str, str]


def pairwise_iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of [x1, y1, x2, y2] boxes: shape (len(a), len(b))."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9), dtype=np.float64)


def _label_boxes(label: Path) -> npt.NDArray[np.float64]:
    rows = [line.split() for line in label.read_text(encoding="utf-8").splitlines() if line.strip()]
    xywh = np.array([[float(v) for v in r[1:5]] for r in rows], dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)


def _prediction(name: str, row: list[str]) -> Prediction:
    x1, y1, x2, y2 = (float(v) for v in row[1:5])
    return Prediction(name, float(row[0]), (x1, y1, x2, y2))


class TeacherCache:
    """The teacher's predictions (class name, confidence, normalised xyxy) per source image, on disk under
    `state_dir/teacher-cache/<weights hash>-<imgsz>/` as `class conf x1 y1 x2 y2` rows: keyed by the weights'
    and the image's bytes."""

    def __init__(self, model: Path, *, state_dir: Path, imgsz: int) -> None:
        weights = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
        self.model = model
        self.imgsz = imgsz
        self.state_dir = state_dir
        self.folder = state_dir / "teacher-cache" / f"{weights}-{imgsz}"
        self.predicted = 0
        self.reused = 0

    @property
    def _names_file(self) -> Path:
        return self.folder / "names.json"  # class index -> name; COCO names hold spaces

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.txt"

    def predictions(self, targets: Sequence[PseudoTarget], batch: int = 16) -> dict[str, list[Prediction]]:
        """Predictions per image digest, running the teacher only on images not cached yet."""
        todo = list({t.digest: t.image for t in targets if not self._path(t.digest).is_file()}.items())
        if todo:
            self.folder.mkdir(parents=True, exist_ok=True)
            prepare_runtime(self.state_dir)
            from ultralytics import YOLO

            yolo = YOLO(str(self.model), task="detect")
            self._names_file.write_text(json.dumps(yolo.names), encoding="utf-8")
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                results = yolo.predict(
                    [str(p) for _, p in chunk], imgsz=self.imgsz, conf=CACHE_FLOOR, verbose=False, max_det=300
                )
                for (digest, _), res in zip(chunk, results, strict=True):
                    found = zip(
                        res.boxes.cls.cpu().numpy().astype(int),
                        res.boxes.conf.cpu().numpy(),
                        res.boxes.xyxyn.cpu().numpy(),
                        strict=True,
                    )
                    text = "".join(f"{c} {conf:.4f} {' '.join(f'{v:.6f}' for v in box)}\n" for c, conf, box in found)
                    tmp = self._path(digest).with_suffix(".part")
                    tmp.write_text(text, encoding="utf-8")
                    tmp.replace(self._path(digest))
            self.predicted += len(todo)
        self.reused += len({t.digest for t in targets}) - len(todo)
        names = json.loads(self._names_file.read_text(encoding="utf-8")) if targets else {}
        out: dict[str, list[Prediction]] = {}
        for t in targets:
            rows = [line.split() for line in self._path(t.digest).read_text(encoding="utf-8").splitlines() if line]
            out[t.digest] = [_prediction(names[r[0]], r[1:]) for r in rows]
        return out


def add_pseudo_labels(
    targets: Sequence[PseudoTarget], cache: TeacherCache, *, confidence: dict[str, float]
) -> Counter[str]:
    """Append the teacher's boxes to each target's label file, for the target's classes only, each class at
    its `confidence` (teacher class name -> threshold).

    One object keeps one teacher box (the most confident of overlapping classes), and a teacher box that
    overlaps a box already in the label file is skipped. Returns the boxes added per taxonomy class.
    """
    predictions = cache.predictions(targets)
    added: Counter[str] = Counter()
    for target in targets:
        kept = sorted(
            (p for p in predictions[target.digest] if p.name in target.classes and p.confidence >= confidence[p.name]),
            key=lambda p: -p.confidence,
        )
        boxes = np.array([p.box for p in kept], dtype=np.float64).reshape(-1, 4)
        chosen: list[int] = []
        for i in range(len(kept)):
            if not chosen or pairwise_iou(boxes[i : i + 1], boxes[chosen]).max() <= SAME_OBJECT_IOU:
                chosen.append(i)
        existing = _label_boxes(target.label)
        if len(existing) and chosen:
            chosen = [i for i in chosen if pairwise_iou(boxes[i : i + 1], existing).max() <= OVERLAP_IOU]
        lines = []
        for i in chosen:
            x1, y1, x2, y2 = boxes[i]
            taxonomy = target.classes[kept[i].name]
            lines.append(
                f"{TAXONOMY.index(taxonomy)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"
            )
            added[taxonomy] += 1
        if lines:
            with target.label.open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
    log.info(
        "pseudo-labels from %s: %s (teacher ran on %d images, %d from its cache)",
        cache.model.name,
        dict(added),
        cache.predicted,
        cache.reused,
    )
    return added
