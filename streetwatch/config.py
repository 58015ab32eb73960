"""The whole streetwatch configuration: one pydantic tree, loaded from YAML, that validates itself."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.schemas import CaseType


class ZoneKind(StrEnum):
    """What a zone watches for."""

    NO_PARKING = "no_parking"
    NO_VENDING = "no_vending"
    LITTER_WATCH = "litter_watch"
    AD_CONTROL = "ad_control"


#: The case type each zone kind raises.
ZONE_CASE_TYPE: Final[dict[ZoneKind, CaseType]] = {
    ZoneKind.NO_PARKING: CaseType.ILLEGAL_PARKING,
    ZoneKind.NO_VENDING: CaseType.STREET_VENDING,
    ZoneKind.LITTER_WATCH: CaseType.PILED_LITTER,
    ZoneKind.AD_CONTROL: CaseType.UNPERMITTED_AD,
}

#: Dwell time per zone kind when a zone gives none, in stream seconds.
DEFAULT_DWELL_S: Final[dict[ZoneKind, float]] = {
    ZoneKind.NO_PARKING: 180.0,
    ZoneKind.NO_VENDING: 300.0,
    ZoneKind.LITTER_WATCH: 600.0,
    ZoneKind.AD_CONTROL: 60.0,
}

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Point = tuple[Unit, Unit]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneConfig(_Strict):
    """A polygon of the camera's view and the rule that watches it."""

    id: str = Field(min_length=1, max_length=128, description="Unique within the camera.")
    kind: ZoneKind = Field(description="no_parking | no_vending | litter_watch | ad_control")
    polygon: list[Point] = Field(min_length=3, description="Normalised [x, y] vertices, at least three.")
    dwell_s: float | None = Field(
        default=None, gt=0, description="Stream seconds an object must stay before a case; default per kind."
    )

    @property
    def effective_dwell_s(self) -> float:
        """The dwell time in force for this zone."""
        return self.dwell_s if self.dwell_s is not None else DEFAULT_DWELL_S[self.kind]

    @field_validator("polygon")
    @classmethod
    def _has_area(cls, v: list[Point]) -> list[Point]:
        area2 = sum(v[i][0] * v[(i + 1) % len(v)][1] - v[(i + 1) % len(v)][0] * v[i][1] for i in range(len(v)))
        if abs(area2) < 1e-9:
            raise ValueError("polygon has no area (its points are collinear or repeated)")
        return v


class CameraConfig(_Strict):
    """One camera: where its frames come from, how often to look, and its zones."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Unique camera id.")
    source: str | int = Field(description="File path, rtsp://, http(s):// URL, or a local device index.")
    sample_every_s: float = Field(default=2.0, gt=0, description="Analyse one frame every N stream seconds.")
    zones: list[ZoneConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_zones(self) -> CameraConfig:
        seen: set[str] = set()
        for zone in self.zones:
            if zone.id in seen:
                raise ValueError(f"zone id '{zone.id}' is used twice")
            seen.add(zone.id)
        return self


class DetectorConfig(_Strict):
    """Which model looks at the frames, and how."""

    model: Path | None = Field(default=None, description="A .pt, .onnx or OpenVINO model; default: the shipped one.")
    imgsz: int = Field(default=512, ge=32, le=2048, description="Inference image size (the training size).")
    confidence: float = Field(default=0.25, gt=0, lt=1, description="Minimum detection confidence.")
    device: str = Field(default="cpu", description="cpu, or a CUDA device such as 0.")


class StreetwatchConfig(_Strict):
    """The root of a streetwatch config file."""

    cameras: list[CameraConfig] = Field(min_length=1)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)

    @model_validator(mode="after")
    def _unique_cameras(self) -> StreetwatchConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id '{cam.id}' is used twice")
            seen.add(cam.id)
        return self


class ConfigError(ValueError):
    """A config file is unreadable or invalid; `problems` name each offending field path."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as `cameras[0].zones[1].polygon`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per error: the field path and what is wrong with it."""
    problems = []
    for err in exc.errors():
        # Union members and validators add their own names to the location; keep the user's fields.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in {"int", "str"})))
        problems.append(f"{field_path(loc)}: {err['msg']}")
    return problems


def parse_config(data: object, path: Path) -> StreetwatchConfig:
    """Validate already-parsed YAML."""
    try:
        return StreetwatchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc)) from None


def load_config(path: Path) -> StreetwatchConfig:
    """Read and validate a YAML config file; relative source and model paths resolve against its folder."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["no such file"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from None
    config = parse_config(data, path)
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: StreetwatchConfig, base: Path) -> StreetwatchConfig:
    cameras = []
    for cam in config.cameras:
        src = cam.source
        if isinstance(src, str) and "://" not in src and not Path(src).is_absolute():
            src = str((base / src).resolve())
        cameras.append(cam.model_copy(update={"source": src}))
    detector = config.detector
    if detector.model is not None and not detector.model.is_absolute():
        detector = detector.model_copy(update={"model": (base / detector.model).resolve()})
    return config.model_copy(update={"cameras": cameras, "detector": detector})
