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
