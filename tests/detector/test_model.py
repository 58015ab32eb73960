"""Loading models through the one interface, and what the shipped model sees in a real street photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detector.model import Detector, ModelError, default_model, shipped_model
from detector.pseudo import pairwise_iou
from detector.taxonomy import TAXONOMY
from streetwatch.demo import asset_image


@pytest.fixture(scope="module")
def detector(runtime_dir: Path) -> Detector:
    return Detector(state_dir=runtime_dir)


def test_shipped_model_speaks_the_taxonomy(detector: Detector) -> None:
    assert detector.info.path == default_model("cpu")
    assert detector.info.format == "openvino"
    assert detector.info.names == TAXONOMY
    assert detector.info.version.startswith("streetwatch-n_openvino_model-")


def test_a_cuda_device_defaults_to_the_pytorch_weights() -> None:
    assert default_model("0") == shipped_model()


def test_the_cpu_default_boxes_what_the_shipped_pt_boxes(detector: Detector, runtime_dir: Path) -> None:
    # The OpenVINO folder is an export of the .pt: a retrained .pt shipped without a fresh export
    # (`streetwatch export --format openvino --output models/streetwatch-n_openvino_model`) fails here.
    pt = Detector(shipped_model(), state_dir=runtime_dir)
    bus = asset_image("bus.jpg")  # in zidane.jpg v1 boxes nothing at the pipeline's confidence
    (a,) = pt.detect([bus])
    (b,) = detector.detect([bus])
    for one, other in ((a, b), (b, a)):
        clear = one.confidence >= 0.35  # away from the 0.25 threshold, where a box may fall either side
        assert clear.sum() >= 2
        iou = pairwise_iou(one.xyxy[clear].astype(np.float64), other.xyxy.astype(np.float64))
        same_class = one.class_id[clear][:, None] == other.class_id[None, :]
        best = np.where(same_class, iou, 0).max(axis=1)
        assert (best >= 0.9).all(), (one.names, other.names, best)


def test_shipped_model_sees_the_people_in_bus_jpg(detector: Detector) -> None:
    (dets,) = detector.detect([asset_image("bus.jpg")])
    assert dets.names.count("person") >= 2, dets.names
    assert ((dets.xyxy >= 0) & (dets.xyxy <= 1)).all()


@pytest.mark.xfail(
    strict=True,
    reason="the shipped model (v1) was trained before street-level vehicles were in ../shared/data and does not "
    "see the bus in bus.jpg; v2 is in progress (models/README.md). Strict: when a model does, this fails until "
    "the marker goes.",
)
def test_shipped_model_sees_the_bus_in_bus_jpg(detector: Detector) -> None:
    (dets,) = detector.detect([asset_image("bus.jpg")])
    assert "bus" in dets.names, dets.names


def test_batch_returns_one_result_per_image_in_order(detector: Detector) -> None:
    bus, zidane = asset_image("bus.jpg"), asset_image("zidane.jpg")
    batch = detector.detect([bus, zidane, bus])
    assert len(batch) == 3
    assert batch[0].names == batch[2].names


def test_missing_model_file_names_the_path(tmp_path: Path, runtime_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"model file .*nope\.pt does not exist"):
        Detector(tmp_path / "nope.pt", state_dir=runtime_dir)


def test_unsupported_format_is_refused(tmp_path: Path, runtime_dir: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\0")
    with pytest.raises(ModelError, match="unsupported model format"):
        Detector(path, state_dir=runtime_dir)


def test_model_with_foreign_class_names_is_refused(tmp_path: Path, runtime_dir: Path) -> None:
    ckpt = torch.load(shipped_model(), map_location="cpu", weights_only=False)
    names = dict(ckpt["model"].names)
    names[8] = "overflow"
    ckpt["model"].names = names
    path = tmp_path / "renamed.pt"
    torch.save(ckpt, path)
    with pytest.raises(ModelError, match=r"\['overflow'\] are not in the streetwatch taxonomy"):
        Detector(path, state_dir=runtime_dir)
