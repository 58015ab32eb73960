"""Close-up training crops around large objects, with their labels carried over."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detector.recipes import ZoomSpec
from detector.taxonomy import TAXONOMY


def write_image(target: Path, image: np.ndarray, quality: int) -> None:
    """Encode `image` in the format of `target`'s suffix (WebP or JPEG at `quality`; PNG, BMP losslessly)."""
    flag = cv2.IMWRITE_WEBP_QUALITY if target.suffix == ".webp" else cv2.IMWRITE_JPEG_QUALITY
    if not cv2.imwrite(str(target), image, [flag, quality]):
        raise OSError(f"could not write {target}")


def _read_labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return np.array([[float(v) for v in r[:5]] for r in rows], dtype=np.float64).reshape(-1, 5)


def zoom_crops(
    image_path: Path, label_path: Path, spec: ZoomSpec, out_images: Path, out_labels: Path, *, quality: int = 90
) -> list[Path]:
    """Write up to `spec.per_image` crops of one train image, each centred on a large object of `spec.classes`.

    The crop keeps the image's aspect ratio and is sized so the object spans `spec.fill` of its width; it is
    written at its own resolution (the trainer scales every image to its size anyway), in the image's format
    at `quality`. Other objects are kept when at least half of them is
    inside the crop, clipped to it. Returns the written image paths.
    """
    labels = _read_labels(label_path)
    wanted = [TAXONOMY.index(c) for c in spec.classes]
    rank = {cls: i for i, cls in enumerate(wanted)}
    big = [row for row in labels if int(row[0]) in rank and max(row[3], row[4]) >= spec.min_size and row[3] < spec.fill]
    big.sort(key=lambda r: (rank[int(r[0])], -r[3] * r[4]))
    if not big:
        return []
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        return []
    h, w = image.shape[:2]
    xyxy = np.concatenate([labels[:, 1:3] - labels[:, 3:5] / 2, labels[:, 1:3] + labels[:, 3:5] / 2], axis=1)
    written = []
    for k, row in enumerate(big[: spec.per_image]):
        cw = min(1.0, row[3] / spec.fill)
        ch = cw  # same share of both sides keeps the aspect ratio
        x0 = float(np.clip(row[1] - cw / 2, 0, 1 - cw))
        y0 = float(np.clip(row[2] - ch / 2, 0, 1 - ch))
        clipped = np.clip((xyxy - [x0, y0, x0, y0]) / [cw, ch, cw, ch], 0, 1)
        full = (xyxy[:, 2:] - xyxy[:, :2]).prod(axis=1) / (cw * ch)
        kept = (clipped[:, 2:] - clipped[:, :2]).prod(axis=1)
        keep = kept >= 0.5 * np.maximum(full, 1e-9)
        px = (round(x0 * w), round(y0 * h), round((x0 + cw) * w), round((y0 + ch) * h))
        target = out_images / f"{image_path.stem}__zoom{k}{image_path.suffix}"
        write_image(target, image[px[1] : px[3], px[0] : px[2]], quality)
        lines = [
            f"{int(labels[i, 0])} {(b[0] + b[2]) / 2:.6f} {(b[1] + b[3]) / 2:.6f} {b[2] - b[0]:.6f} {b[3] - b[1]:.6f}"
            for i, b in enumerate(clipped)
            if keep[i]
        ]
        (out_labels / f"{target.stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(target)
    return written
