"""Where an image of a built dataset came from: its file name starts with its source recipe's name.

Kept free of heavy imports: the training script runs it on bare GPU machines."""

from __future__ import annotations

from pathlib import Path

SOURCE_SEPARATOR = "__"  # a built image is named SOURCE__STEM, so its source survives oversampling and crops


def source_of(image: str | Path) -> str:
    """The source recipe a built dataset's image came from ("" for an image named otherwise)."""
    name = Path(image).name
    return name.split(SOURCE_SEPARATOR, 1)[0] if SOURCE_SEPARATOR in name else ""
