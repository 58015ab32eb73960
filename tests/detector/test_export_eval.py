"""Exports load through the same interface and agree with the .pt; eval matches classes by name."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from detector.evaluate import DatasetError, evaluate
from detector.export import export_model
from detector.model import Detector
from streetwatch.cli import app
from streetwatch.demo import asset_image

# The three whole people in bus.jpg (x, y, w, h, normalised), as the COCO-pretrained yolo11n-pose boxes them.
BUS_PEOPLE = ["0.180 0.605 0.241 0.468", "0.913 0.586 0.174 0.454", "0.350 0.585 0.149 0.420"]


def person_dataset(root: Path, names: list[str]) -> Path:
    """A one-image val set of bus.jpg whose person class has index names.index('person')."""
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "val" / "bus.jpg"), asset_image("bus.jpg"))
    person = names.index("person")
    (root / "labels" / "val" / "bus.txt").write_text("".join(f"{person} {b}\n" for b in BUS_PEOPLE))
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/val", "val": "images/val", "names": names}))
    return data


@pytest.mark.parametrize("names", [["person"], ["graffiti", "car", "person"]])
def test_eval_matches_classes_by_name(tmp_path: Path, runtime_dir: Path, names: list[str]) -> None:
    report = evaluate(person_dataset(tmp_path / "ds", names), model=None, state_dir=runtime_dir)
    (person,) = [c for c in report.classes if c.name == "person"]
    assert person.instances == 3 and person.images == 1
    assert person.recall >= 0.6 and person.ap50 >= 0.4


def test_eval_refuses_names_outside_the_taxonomy(tmp_path: Path, runtime_dir: Path) -> None:
    with pytest.raises(DatasetError, match=r"\['pedestrian'\] are not taxonomy names"):
        evaluate(person_dataset(tmp_path / "ds", ["pedestrian", "person"]), model=None, state_dir=runtime_dir)


def test_eval_cli_prints_and_writes_json(tmp_path: Path, runtime_dir: Path) -> None:
    data = person_dataset(tmp_path / "ds", ["person"])
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--json", str(out), "--state-dir", str(runtime_dir)])
    assert result.exit_code == 0, result.output
    assert "person" in result.output and "AP50" in result.output
    saved = json.loads(out.read_text())
    assert {c["name"] for c in saved["classes"]} == {"person"} and saved["overall"]["instances"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exports_load_and_agree_with_the_pt_model(tmp_path: Path, runtime_dir: Path, fmt: str) -> None:
    name = "model.onnx" if fmt == "onnx" else "model_openvino_model"
    exported = export_model(None, fmt=fmt, imgsz=512, output=tmp_path / name, state_dir=runtime_dir)
    native, other = Detector(state_dir=runtime_dir), Detector(exported, state_dir=runtime_dir)
    assert other.info.format == fmt and other.info.names == native.info.names
    images = [asset_image("bus.jpg"), asset_image("zidane.jpg")]
    for a, b in zip(native.detect(images), other.detect(images), strict=True):
        assert sorted(a.names) == sorted(b.names)


def test_eval_measures_a_teacher_at_its_thresholds(tmp_path: Path, runtime_dir: Path) -> None:
    """A model with classes outside the taxonomy (here yolo11n-pose: 'person' only) is measured on the classes
    it knows, with precision and recall at chosen confidences: how a teacher's threshold is picked."""
    from detector.model import ModelError
    from detector.pretrained import pose_weights

    data = person_dataset(tmp_path / "ds", ["car", "person"])
    with (tmp_path / "ds" / "labels" / "val" / "bus.txt").open("a") as f:
        f.write("0 0.5 0.45 0.98 0.5\n")  # the bus, as a car: a class the pose model does not have
    with pytest.raises(ModelError, match=r"has no classes \['car'\], which the val labels hold"):
        evaluate(data, model=pose_weights(), state_dir=runtime_dir, imgsz=640)
    report = evaluate(
        data, model=pose_weights(), state_dir=runtime_dir, imgsz=640, at_confidence=(0.25, 0.99), classes=("person",)
    )
    (person,) = report.classes
    assert person.name == "person" and person.instances == 3
    precision, recall = person.at_confidence["0.25"]
    assert precision >= 0.6 and recall >= 0.6
    assert person.at_confidence["0.99"][1] < recall  # a stricter threshold keeps fewer of the people


def test_eval_cli_shows_precision_and_recall_at_a_threshold(tmp_path: Path, runtime_dir: Path) -> None:
    data = person_dataset(tmp_path / "ds", ["person"])
    args = ["eval", "--data", str(data), "--at-conf", "0.3", "--class", "person", "--state-dir", str(runtime_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "P@0.3" in result.output and "R@0.3" in result.output
    wrong = CliRunner().invoke(app, [*args[:-2], "--class", "bus", "--state-dir", str(runtime_dir)])
    assert wrong.exit_code == 2 and "the dataset has no classes ['bus']" in wrong.output
