"""Pseudo-labels: boxes a trusted model adds to sources that never annotated a class.

The merged sources each label only their own classes, so a garbage photo full of unlabelled people teaches
the model that people are background. A COCO-pretrained person detector fills that gap in the sources that
do not annotate people; the model card says which labels came from where.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from detector.runtime import prepare_runtime
from detector.taxonomy import TAXONOMY

log = logging.getLogger(__name__)


def _iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of [x1, y1, x2, y2] boxes: shape (len(a), len(b))."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9), dtype=np.float64)


def _existing_boxes(label: Path, class_index: int) -> npt.NDArray[np.float64]:
    rows = [line.split() for line in label.read_text(encoding="utf-8").splitlines() if line.strip()]
    xywh = np.array([[float(v) for v in r[1:5]] for r in rows if int(r[0]) == class_index], dtype=np.float64)
    if xywh.size == 0:
        return np.zeros((0, 4))
    return np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)


def add_pseudo_labels(
    images: Iterable[Path],
    labels_dir: Path,
    *,
    model: Path,
    classes: dict[str, str],
    confidence: float,
    state_dir: Path,
    imgsz: int = 640,
    batch: int = 16,
) -> Counter[str]:
    """Append the model's boxes of `classes` (model name -> taxonomy name) to each image's label file.

    A box that overlaps (IoU > 0.5) a label of the same class already there is skipped. Returns how many
    boxes were added per taxonomy class.
    """
    prepare_runtime(state_dir)
    from ultralytics import YOLO

    yolo = YOLO(str(model))
    wanted = {i: TAXONOMY.index(classes[n]) for i, n in yolo.names.items() if n in classes}
    if not wanted:
        raise ValueError(f"{model} has none of the classes {sorted(classes)}")
    added: Counter[str] = Counter()
    paths = list(images)
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        for path, res in zip(
            chunk, yolo.predict([str(p) for p in chunk], imgsz=imgsz, conf=confidence, verbose=False), strict=True
        ):
            label = labels_dir / f"{path.stem}.txt"
            boxes = res.boxes.xyxyn.cpu().numpy().astype(np.float64)
            cls = res.boxes.cls.cpu().numpy().astype(int)
            lines = []
            for model_cls, target in wanted.items():
                new = boxes[cls == model_cls]
                if len(new) == 0:
                    continue
                old = _existing_boxes(label, target)
                if len(old):
                    new = new[_iou(new, old).max(axis=1) <= 0.5]
                for x1, y1, x2, y2 in new:
                    lines.append(f"{target} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}")
                added[TAXONOMY[target]] += len(new)
            if lines:
                with label.open("a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
    log.info("pseudo-labels from %s: %s", model.name, dict(added))
    return added
