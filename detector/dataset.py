"""Assemble a merged YOLO dataset in the taxonomy from source datasets, outside the repository."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import yaml

from detector.pretrained import resolve_weights
from detector.provenance import SOURCE_SEPARATOR
from detector.pseudo import PseudoTarget, TeacherCache, add_pseudo_labels
from detector.recipes import MixRecipe, PseudoLabelSpec, RecipeError, SourceRecipe
from detector.reviewed import MANIFEST, merge_exports
from detector.taxonomy import TAXONOMY
from detector.zoom import write_image, zoom_crops

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class SplitReport:
    """What went into one split: images, boxes per class, and what was dropped."""

    images: int = 0
    background_images: int = 0
    instances: Counter[str] = field(default_factory=Counter)
    pseudo: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)


@dataclass
class BuildReport:
    """Per-split counts of a built dataset, plus the images dropped from train because val holds them."""

    splits: dict[str, SplitReport] = field(default_factory=lambda: {s: SplitReport() for s in SPLITS})
    train_list_entries: int = 0
    zoom_crops: int = 0
    leaked_from_val: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict, written beside the dataset as counts.json."""
        return {
            "splits": {
                name: {
                    "images": rep.images,
                    "background_images": rep.background_images,
                    "instances": {c: rep.instances.get(c, 0) + rep.pseudo.get(c, 0) for c in TAXONOMY},
                    "pseudo_labelled": dict(sorted(rep.pseudo.items())),
                    "dropped": dict(sorted(rep.dropped.items())),
                }
                for name, rep in self.splits.items()
            },
            "train_list_entries": self.train_list_entries,
            "zoom_crops": self.zoom_crops,
            "leaked_from_val": self.leaked_from_val,
        }


def _source_names(folder: Path) -> list[str]:
    data = yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8"))
    names = data["names"]
    if isinstance(names, dict):
        return [names[k] for k in sorted(names)]
    return list(names)


def _check_mapping(name: str, recipe: SourceRecipe, source_names: list[str]) -> None:
    unaccounted = sorted(set(source_names) - set(recipe.classes) - set(recipe.drop))
    if unaccounted:
        raise RecipeError(
            f"sources/{name}.yaml: classes {unaccounted} of {recipe.folder}/data.yaml are neither in "
            "'classes' nor in 'drop'"
        )
    missing = sorted((set(recipe.classes) | set(recipe.drop)) - set(source_names))
    if missing:
        raise RecipeError(f"sources/{name}.yaml: classes {missing} do not exist in {recipe.folder}/data.yaml")


def _remap_labels(text: str, source_names: list[str], recipe: SourceRecipe, report: SplitReport) -> list[str]:
    lines = []
    for raw in text.splitlines():
        parts = raw.split()
        if not parts:
            continue
        src = source_names[int(parts[0])]
        target = recipe.classes.get(src)
        if target is None:
            report.dropped[src] += 1
            continue
        report.instances[target] += 1
        lines.append(" ".join([str(TAXONOMY.index(target)), *parts[1:5]]))
    return lines


def _write_image(src: Path, dst: Path, max_side: int | None, image_format: str | None, quality: int) -> Path:
    # dst is a stem that may itself hold dots (Roboflow's "x_jpg.rf.<hash>"): append, never with_suffix().
    if max_side is None and image_format is None:
        target = dst.parent / f"{dst.name}{src.suffix.lower()}"
        shutil.copyfile(src, target)
        return target
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if img is None:
        raise RecipeError(f"{src}: not a readable image")
    h, w = img.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    fmt = image_format or "jpg"
    target = dst.parent / f"{dst.name}.{fmt}"
    write_image(target, img, quality)
    return target


def teacher_classes(spec: PseudoLabelSpec, source: SourceRecipe) -> dict[str, str]:
    """The teacher classes (teacher name -> taxonomy name) that `spec` adds on `source`: only those the
    source does not label itself, so a teacher never overrides or duplicates an annotator."""
    own = set(source.classes.values())
    return {name: target for name, target in spec.classes.items() if target not in own}


def _pseudo_label(
    spec: PseudoLabelSpec,
    sources: dict[str, SourceRecipe],
    built: dict[tuple[str, str], list[tuple[Path, str, Path]]],
    report: BuildReport,
    state_dir: Path,
) -> None:
    try:
        model = resolve_weights(spec.model)
    except FileNotFoundError as exc:
        raise RecipeError(f"pseudo_labels model {spec.model!r}: {exc}") from None
    cache = TeacherCache(model, state_dir=state_dir, imgsz=spec.imgsz)
    for split in spec.splits:
        targets = [
            PseudoTarget(image, digest, label, teacher_classes(spec, sources[name]))
            for name in spec.sources
            for image, digest, label in built[(split, name)]
        ]
        targets = [t for t in targets if t.classes]
        if targets:
            report.splits[split].pseudo.update(add_pseudo_labels(targets, cache, confidence=spec.thresholds()))


def _write_val_yamls(out: Path, sources: list[str]) -> None:
    """One data file per source's val split, so each class is also measured where it is annotated."""
    for name in sources:
        files = sorted(p.name for p in (out / "images" / "val").glob(f"{name}{SOURCE_SEPARATOR}*"))
        (out / f"val_{name}.txt").write_text("".join(f"./images/val/{f}\n" for f in files), encoding="utf-8")
        data = {"path": str(out.resolve()), "train": "train.txt", "val": f"val_{name}.txt"}
        data["names"] = dict(enumerate(TAXONOMY))  # type: ignore[assignment]
        (out / f"val_{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def annotated_classes(mix: MixRecipe, sources: dict[str, SourceRecipe]) -> dict[str, list[str]]:
    """Which taxonomy classes each source's train images are labelled for (its own mapping plus
    pseudo-labels), in taxonomy order. With `partial_labels` the built data.yaml carries this as
    `annotated`, and training ignores the other classes on that source's images: an unlabelled car in a
    garbage photo is then not background, only unannotated."""
    known = {name: set(sources[name].classes.values()) for name in mix.sources}
    for spec in mix.pseudo_labels:
        if "train" in spec.splits:
            for name in spec.sources:
                known[name] |= set(teacher_classes(spec, sources[name]).values())
    return {name: [c for c in TAXONOMY if c in known[name]] for name in mix.sources}


def build_dataset(
    mix: MixRecipe,
    sources: dict[str, SourceRecipe],
    *,
    data_root: Path,
    out: Path,
    state_dir: Path,
    max_side: int | None = None,
    image_format: str | None = None,
    quality: int = 90,
) -> BuildReport:
    """Build the merged dataset under `out` (replacing it) and return its per-class counts.

    Images are copied, or re-encoded when `max_side` (longest side, never upscaled) or `image_format`
    ("jpg" or "webp", at `quality`) is given; labels are rewritten in the taxonomy.
    A train image whose bytes also appear in val is left out of train, so validation stays unseen.
    The train split is listed in `train.txt`, where images with rare classes repeat (`oversample`).
    Pseudo-labels are added last, from the source images (the teacher's predictions are cached under
    `state_dir`, which also holds the runtime files of the teacher).
    """
    if not data_root.is_dir():
        raise RecipeError(f"data root {data_root} does not exist")
    if out.exists():
        shutil.rmtree(out)
    report = BuildReport()
    val_hashes: set[str] = set()
    train_entries: list[str] = []
    built: dict[tuple[str, str], list[tuple[Path, str, Path]]] = defaultdict(list)
    for split in ("val", "train"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        rep = report.splits[split]
        for name in mix.sources:
            recipe = sources[name]
            folder = data_root / recipe.folder
            if not (folder / "data.yaml").is_file():
                raise RecipeError(f"sources/{name}.yaml: {folder}/data.yaml does not exist")
            source_names = _source_names(folder)
            _check_mapping(name, recipe, source_names)
            for img in sorted((folder / "images" / split).iterdir()):
                if img.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                digest = hashlib.sha1(img.read_bytes()).hexdigest()
                if split == "val":
                    val_hashes.add(digest)
                elif digest in val_hashes:
                    report.leaked_from_val += 1
                    continue
                label = folder / "labels" / split / f"{img.stem}.txt"
                text = label.read_text(encoding="utf-8") if label.is_file() else ""
                before = rep.instances.copy()
                lines = _remap_labels(text, source_names, recipe, rep)
                stem = f"{name}{SOURCE_SEPARATOR}{img.stem}"
                written = _write_image(img, out / "images" / split / stem, max_side, image_format, quality)
                built_label = out / "labels" / split / f"{stem}.txt"
                built_label.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
                built[(split, name)].append((img, digest, built_label))
                rep.images += 1
                if not lines:
                    rep.background_images += 1
                if split == "train":
                    present = {c for c in TAXONOMY if rep.instances[c] > before[c]}
                    repeat = max((mix.oversample.get(c, 1) for c in present), default=1)
                    train_entries += [f"./images/train/{written.name}"] * repeat
    for spec in mix.pseudo_labels:
        _pseudo_label(spec, sources, built, report, state_dir)
    if mix.zoom is not None:
        for name in mix.zoom.sources:
            for img in sorted((out / "images" / "train").glob(f"{name}{SOURCE_SEPARATOR}*")):
                crops = zoom_crops(
                    img,
                    out / "labels" / "train" / f"{img.stem}.txt",
                    mix.zoom,
                    out / "images" / "train",
                    out / "labels" / "train",
                    quality=quality,
                )
                train_entries += [f"./images/train/{c.name}" for c in crops]
                report.zoom_crops += len(crops)
    reviewed = [data_root / folder for folder in mix.reviewed]  # an absolute folder stays itself
    try:
        train_entries += merge_exports(reviewed, out) if reviewed else []
    except ValueError as exc:
        raise RecipeError(f"reviewed: {exc}") from None
    _write_val_yamls(out, mix.sources)
    (out / "train.txt").write_text("\n".join(train_entries) + "\n", encoding="utf-8")
    report.train_list_entries = len(train_entries)
    data_yaml = {
        "path": str(out.resolve()),
        "train": "train.txt",
        "val": "images/val",
        "names": dict(enumerate(TAXONOMY)),
    }
    if mix.partial_labels:
        data_yaml["annotated"] = annotated_classes(mix, sources)
    if reviewed:
        data_yaml["reviewed"] = [MANIFEST]
    (out / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False), encoding="utf-8")
    (out / "counts.json").write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    log.info("built %s: %d train, %d val images", out, report.splits["train"].images, report.splits["val"].images)
    return report
