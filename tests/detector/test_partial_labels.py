"""Training on merged sources: a class a source never labels is neither taught as background on its images
nor mixed into its mosaics from other sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from detector.reviewed import ReviewedImage, reviewed_manifest, write_reviewed_dataset
from detector.taxonomy import TAXONOMY
from detector.train import add_hard_negatives, mosaic_within_sources, partial_label_loss

ANNOTATED = {"garbage_src": ["garbage"], "traffic_src": ["car", "bus"]}
NAMES = dict(enumerate(TAXONOMY))


def detection_model() -> Any:
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=len(TAXONOMY), verbose=False)
    model.args = get_cfg()
    model.names = NAMES
    return model


def class_logit_grads(model: Any, im_files: list[str], annotated: dict[str, list[str]]) -> Any:
    """Gradient of the training loss on each image's class logits: (image, class), summed over anchors."""
    import torch

    torch.manual_seed(0)
    model.train()
    preds = model(torch.rand(len(im_files), 3, 64, 64))
    preds["scores"].retain_grad()
    garbage = TAXONOMY.index("garbage")
    batch = {  # one labelled garbage box on the first image only
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[float(garbage)]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
        "im_file": im_files,
    }
    loss, _ = partial_label_loss(model, annotated)(preds, batch)
    loss.sum().backward()
    return preds["scores"].grad.abs().sum(dim=2)


def test_a_class_the_source_does_not_label_gets_no_class_loss_on_its_images(runtime_dir: Path) -> None:
    grads = class_logit_grads(
        detection_model(), ["ds/images/train/garbage_src__0.jpg", "ds/images/train/traffic_src__0.jpg"], ANNOTATED
    )
    car, bus, garbage = (TAXONOMY.index(c) for c in ("car", "bus", "garbage"))
    # The garbage photo trains garbage (its label) but says nothing about cars or buses in it...
    assert grads[0, garbage] > 0
    assert grads[0, car] == 0 and grads[0, bus] == 0
    # ...while the traffic image, whose source labels cars, teaches "no car here" and nothing on garbage.
    assert grads[1, car] > 0 and grads[1, bus] > 0
    assert grads[1, garbage] == 0
    assert int((grads[0] > 0).sum()) == 1 and int((grads[1] > 0).sum()) == 2


def test_an_image_of_no_listed_source_trains_every_class(runtime_dir: Path) -> None:
    grads = class_logit_grads(detection_model(), ["ds/images/train/0.jpg", "ds/images/train/other__1.jpg"], ANNOTATED)
    assert bool((grads > 0).all())


def reviewed_grads(model: Any) -> tuple[Any, Any]:
    """Signed class-logit gradients (image, class, anchor) on two reviewed images (a confirmed garbage box, a
    rejected car box as a hard negative) and one ordinary image, and whether each anchor lies in the box."""
    import torch
    from ultralytics.utils.tal import make_anchors

    torch.manual_seed(0)
    model.train()
    preds = model(torch.rand(3, 3, 64, 64))
    preds["scores"].retain_grad()
    garbage, car = TAXONOMY.index("garbage"), TAXONOMY.index("car")
    box = [0.5, 0.5, 0.4, 0.4]
    batch = {
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[float(garbage)], [-1.0 - car]]),
        "bboxes": torch.tensor([box, box]),
        "im_file": ["ds/reviewed__case-1.jpg", "ds/reviewed__case-2.jpg", "ds/images/train/other.jpg"],
    }
    loss_fn = partial_label_loss(model, {}, ["reviewed__case-1.jpg", "reviewed__case-2.jpg"])
    loss, _ = loss_fn(preds, batch)
    loss.sum().backward()
    anchors, strides = make_anchors(preds["feats"], loss_fn.stride, 0.5)
    centres = anchors * strides
    inside = ((centres - 32).abs() <= 0.2 * 64).all(dim=1)
    return preds["scores"].grad, inside


def test_a_reviewed_image_trains_only_its_class_and_only_inside_its_box(runtime_dir: Path) -> None:
    grads, inside = reviewed_grads(detection_model())
    car, garbage = TAXONOMY.index("car"), TAXONOMY.index("garbage")
    touched = grads != 0
    # The confirmed garbage image: garbage learnt inside the box (some anchors pulled up: the object)...
    assert bool(touched[0, garbage, inside].all()) and bool((grads[0, garbage, inside] < 0).any())
    # ...and nothing else: not garbage elsewhere on the frame, not the unlabelled cars in it.
    assert int(touched[0].sum()) == int(inside.sum())
    # The rejected car box: inside it every anchor is pushed towards "no car"; the rest of the frame is ignored.
    assert bool((grads[1, car, inside] > 0).all())
    assert int(touched[1].sum()) == int(inside.sum())
    # An ordinary image in the same batch still trains every class everywhere (it is all background here).
    assert bool(touched[2].all())


def two_source_dataset(root: Path) -> Path:
    """Three images from each of two sources, each source labelling only its own class."""
    rng = np.random.default_rng(0)
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for source, cls in (("garbage_src", "garbage"), ("traffic_src", "car")):
        for i in range(3):
            cv2.imwrite(str(root / "images" / "train" / f"{source}__{i}.jpg"), rng.integers(0, 255, (96, 128, 3)))
            (root / "labels" / "train" / f"{source}__{i}.txt").write_text(f"{TAXONOMY.index(cls)} 0.5 0.5 0.3 0.3\n")
    data = {"path": str(root), "train": "images/train", "val": "images/train", "names": NAMES, "annotated": ANNOTATED}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


@pytest.mark.parametrize("within_sources", [True, False])
def test_mosaics_take_their_tiles_from_one_source(tmp_path: Path, runtime_dir: Path, within_sources: bool) -> None:
    import random

    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(two_source_dataset(tmp_path / "ds")))
    cfg = get_cfg(overrides={"imgsz": 64, "mosaic": 1.0, "fliplr": 0.0, "translate": 0.0, "scale": 0.0})
    dataset = build_yolo_dataset(cfg, data["train"], 6, data, mode="train")
    if within_sources:
        mosaic_within_sources(dataset)
    random.seed(0)
    mixed = 0
    for _ in range(5):
        for i in range(len(dataset)):
            classes = {int(c) for c in dataset[i]["cls"].flatten().tolist()}
            mixed += len(classes) > 1
    # Plain ultralytics mosaics mix the sources (so the check can fail); ours never do.
    assert (mixed == 0) is within_sources


def reviewed_and_source_dataset(root: Path) -> Path:
    """Three exported reviewed cases (a confirmed car, two stalls rejected as wrong objects) beside three
    images of a source that labels only garbage."""
    rng = np.random.default_rng(1)
    cases = []
    for i in range(3):
        _ok, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        label, confirmed = ("car", True) if i == 0 else ("street_stall", False)
        cases.append(ReviewedImage(i, confirmed, label, (0.2, 0.2, 0.8, 0.8), "wrong object", jpg.tobytes()))
    write_reviewed_dataset(cases, root)
    for i in range(3):
        cv2.imwrite(str(root / "images" / "train" / f"garbage_src__{i}.jpg"), rng.integers(0, 255, (96, 128, 3)))
        garbage = TAXONOMY.index("garbage")
        (root / "labels" / "train" / f"garbage_src__{i}.txt").write_text(f"{garbage} 0.5 0.5 0.3 0.3\n")
    return root / "data.yaml"


@pytest.mark.parametrize("within_sources", [True, False])
def test_hard_negatives_ride_along_and_stay_in_mosaics_of_reviewed_images(
    tmp_path: Path, runtime_dir: Path, within_sources: bool
) -> None:
    import random

    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(reviewed_and_source_dataset(tmp_path / "ds")))
    cfg = get_cfg(overrides={"imgsz": 64, "mosaic": 1.0, "fliplr": 0.5, "translate": 0.0, "scale": 0.0})
    dataset = build_yolo_dataset(cfg, data["train"], 6, data, mode="train")
    add_hard_negatives(dataset, reviewed_manifest(Path(data["path"]), data["reviewed"]).negatives)
    if within_sources:
        mosaic_within_sources(dataset)
    random.seed(0)
    stall = -1 - TAXONOMY.index("street_stall")
    negatives, mixed = 0, 0
    for _ in range(5):
        for i in range(len(dataset)):
            sample = dataset[i]
            classes = {int(c) for c in sample["cls"].flatten().tolist()}
            negatives += stall in classes
            reviewed = Path(sample["im_file"]).name.startswith("reviewed__")
            # A hard negative or a reviewed box on a source's mosaic (or a garbage box on a reviewed one) would
            # take the wrong image's mask.
            garbage = TAXONOMY.index("garbage")
            mixed += (garbage in classes) if reviewed else (classes != {garbage})
    assert negatives > 0  # the rejected stall boxes survive mosaic and flips, as labels of class -1 - stall
    assert (mixed == 0) is within_sources
