"""The whole streetwatch configuration: one pydantic tree, loaded from YAML, that validates itself."""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.schemas import CaseType, in_time_range


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

#: How far a zone kind's object may drift (normalised units) and still count as staying put, by default.
DEFAULT_STATIONARY_TOLERANCE: Final[dict[ZoneKind, float]] = {
    ZoneKind.NO_PARKING: 0.03,
    ZoneKind.NO_VENDING: 0.05,
    ZoneKind.LITTER_WATCH: 0.05,
    ZoneKind.AD_CONTROL: 0.05,
}

#: Share of an object's own box size (its longer side) it may drift and still be staying, when that is more than
#: the absolute tolerance. The box of a standing object jitters in proportion to its size (a near parked car's
#: anchor was seen to jump 7 % of the frame); a moving car leaves its spot by more than half its length between
#: two samples.
DEFAULT_STATIONARY_BOX_SHARE: Final = 0.5

#: Analysed samples in a row without the violating object after which the camera posts a handled case `absent`.
DEFAULT_VERIFY_ABSENT_SAMPLES: Final = 3

#: Schemes of network sources; anything else without a scheme is a file, an int or /dev/videoN a device.
STREAM_SCHEMES: Final = ("rtsp", "rtsps", "http", "https")


class RtspTransport(StrEnum):
    """How an RTSP camera's packets travel."""

    TCP = "tcp"
    UDP = "udp"


class SourceKind(StrEnum):
    """Where a camera's frames come from."""

    FILE = "file"
    STREAM = "stream"
    DEVICE = "device"


def source_kind(source: str | int) -> SourceKind:
    """A local file, a network stream (rtsp, http...) or a capture device (an index or /dev/videoN)."""
    if isinstance(source, int) or re.fullmatch(r"/dev/video[0-9]+", source):
        return SourceKind.DEVICE
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return SourceKind.STREAM if scheme in STREAM_SCHEMES else SourceKind.FILE


Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Point = tuple[Unit, Unit]
Box = tuple[Unit, Unit, Unit, Unit]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


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
    stationary_tolerance: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="How far (normalised units) an object may drift and still count as staying; default per kind "
        "(0.03 for no_parking, 0.05 otherwise).",
    )
    stationary_box_share: float = Field(
        default=DEFAULT_STATIONARY_BOX_SHARE,
        ge=0.0,
        le=2.0,
        description="An object may also drift this share of its own box size (the longer side) and still count as "
        "staying: a detector's box jitters with the object's size, so a large, near object moves more than "
        "stationary_tolerance while standing still. 0 turns it off.",
    )
    grace_s: float | None = Field(
        default=None,
        gt=0,
        description="How long an object may go unseen (occlusion, a missed detection, a new track id) and still be "
        "the same stay; default max(3 x sample_every_s, 10).",
    )
    quiet_s: float = Field(
        default=600.0,
        ge=0,
        description="After a violation ends, the same spot raises no new case for this many stream seconds.",
    )
    allowed_hours: list[tuple[ClockTime, ClockTime]] = Field(
        default_factory=list,
        description="no_vending only: local times when vending is allowed (night markets), as quoted "
        "['HH:MM', 'HH:MM'] pairs in pipeline.timezone; an end before its start spans midnight.",
    )

    @property
    def effective_dwell_s(self) -> float:
        """The dwell time in force for this zone."""
        return self.dwell_s if self.dwell_s is not None else DEFAULT_DWELL_S[self.kind]

    @property
    def effective_stationary_tolerance(self) -> float:
        """The absolute movement tolerance in force for this zone (see also `stationary_box_share`)."""
        if self.stationary_tolerance is not None:
            return self.stationary_tolerance
        return DEFAULT_STATIONARY_TOLERANCE[self.kind]

    @property
    def allowed_times(self) -> list[tuple[time, time]]:
        """`allowed_hours` as (start, end) times."""
        return [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in self.allowed_hours]

    @field_validator("allowed_hours", mode="before")
    @classmethod
    def _quoted_times(cls, v: object) -> object:
        if isinstance(v, list) and any(isinstance(t, int) for pair in v if isinstance(pair, list) for t in pair):
            raise ValueError("write times in quotes, e.g. ['18:00', '23:30'] (YAML reads 18:00 as a number)")
        return v

    @model_validator(mode="after")
    def _hours_only_for_vending(self) -> ZoneConfig:
        if self.allowed_hours and self.kind is not ZoneKind.NO_VENDING:
            raise ValueError("allowed_hours applies to no_vending zones only")
        if any(a == b for a, b in self.allowed_hours):
            raise ValueError("an allowed_hours range must not start and end at the same time")
        return self

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
    source: str | int = Field(
        description="File path, rtsp(s)://, http(s):// URL (MJPEG, HLS), a device index or /dev/videoN."
    )
    sample_every_s: float = Field(default=2.0, gt=0, description="Analyse one frame every N stream seconds.")
    zones: list[ZoneConfig] = Field(default_factory=list)
    permitted: list[Box] = Field(
        default_factory=list,
        description="Permitted-ad regions [x1, y1, x2, y2], normalised; an ad box lying at least 70 % inside one "
        "raises no unpermitted_ad case.",
    )
    rtsp_transport: RtspTransport = Field(
        default=RtspTransport.TCP,
        description="RTSP cameras: tcp (interleaved in the RTSP connection: no loss, passes NAT and firewalls) or "
        "udp (what some old cameras only speak; loses packets on a busy network).",
    )
    recorded_at: AwareDatetime | None = Field(
        default=None,
        description="File cameras: when the recording began, with its UTC offset (2026-11-30T08:00:00+08:00), so "
        "case times are footage times. Default: the creation time in the file's MP4/MOV header, else the moment "
        "the run opens the file.",
    )

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, v: str | int) -> str | int:
        if isinstance(v, int):
            if v < 0:
                raise ValueError("a device index is 0 or more")
            return v
        if not v.strip():
            raise ValueError("source is empty")
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", v)
        if scheme and scheme.group(1).lower() not in STREAM_SCHEMES:
            raise ValueError(f"unsupported scheme '{scheme.group(1)}://' (use {', '.join(STREAM_SCHEMES)}, a file)")
        return v

    @field_validator("recorded_at")
    @classmethod
    def _plausible_recording(cls, v: datetime | None) -> datetime | None:
        return v if v is None else in_time_range(v)

    @field_validator("permitted")
    @classmethod
    def _ordered_boxes(cls, v: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
        for i, (x1, y1, x2, y2) in enumerate(v):
            if x2 <= x1 or y2 <= y1:
                raise ValueError(f"permitted[{i}] must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return v

    @model_validator(mode="after")
    def _recorded_files_only(self) -> CameraConfig:
        if self.recorded_at is not None and source_kind(self.source) is not SourceKind.FILE:
            raise ValueError("recorded_at applies to video files only: a stream's frames carry the time they arrive")
        return self

    @model_validator(mode="after")
    def _transport_rtsp_only(self) -> CameraConfig:
        rtsp = isinstance(self.source, str) and self.source.lower().startswith(("rtsp://", "rtsps://"))
        if "rtsp_transport" in self.model_fields_set and not rtsp:
            raise ValueError("rtsp_transport applies to rtsp:// and rtsps:// cameras only")
        return self

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

    model: Path | None = Field(
        default=None,
        description="A .pt, .onnx or OpenVINO model; default: the shipped one, as OpenVINO on the CPU, else as .pt.",
    )
    imgsz: int = Field(default=512, ge=32, le=2048, description="Inference image size (the training size).")
    confidence: float = Field(default=0.25, gt=0, lt=1, description="Minimum detection confidence.")
    device: str = Field(default="cpu", description="cpu, or a CUDA device such as 0.")


class PipelineConfig(_Strict):
    """How the pipeline runs: local time, live-source recovery, delivery and the metrics endpoint."""

    timezone: str = Field(default="UTC", description="IANA time zone of the cameras' local time (allowed_hours).")
    skip_unchanged_s: float = Field(
        default=10.0,
        ge=0,
        description="When a camera's view has not changed since its last model run (small grey thumbnails "
        "compared), carry its tracks forward instead of running the model, for at most this many stream seconds; "
        "a stay keeps its dwell clock. 0 runs the model on every due frame.",
    )
    decode_every_frame: bool = Field(
        default=False,
        description="File cameras: decode every frame instead of skipping the GOPs (keyframe to keyframe) that "
        "hold no due frame. The same frames are analysed, at several times the CPU: for checking the skipping.",
    )
    stall_timeout_s: float = Field(
        default=10.0, gt=0, description="Live sources: reopen a source that delivered no frame for this long."
    )
    reconnect_initial_s: float = Field(default=1.0, gt=0, description="First wait before reopening a live source.")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest wait between reopenings (doubling).")
    delivery_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between delivery attempts while the case service is down."
    )
    flush_timeout_s: float = Field(
        default=30.0, ge=0, description="At shutdown, how long to keep delivering; what is left is sent next start."
    )
    service_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a run waits for the case service's first answer; a service that has not answered by "
        "then stops the run with an error (its cases stay in the outbox). Outages after a first answer are waited "
        "out.",
    )
    verify_poll_s: float = Field(
        default=60.0,
        gt=0,
        description="How often (wall seconds) the agent asks the case service for the handled cases of its cameras, "
        "to look at their spots again and post whether the violation is gone (docs/closed-loop.md).",
    )
    verify_absent_samples: dict[CaseType, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict,
        description="Per case type, how many analysed samples in a row must miss the violating object before the "
        f"camera posts it absent (a single missed detection is not gone); types not named take "
        f"{DEFAULT_VERIFY_ABSENT_SAMPLES}.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port; default: no endpoint."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address the metrics endpoint listens on.")

    def absent_samples(self, case_type: CaseType) -> int:
        """How many samples in a row without the object make a handled case of this type `absent`."""
        return self.verify_absent_samples.get(case_type, DEFAULT_VERIFY_ABSENT_SAMPLES)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{v}' (use an IANA name such as Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _backoff_order(self) -> PipelineConfig:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self


class StreetwatchConfig(_Strict):
    """The root of a streetwatch config file."""

    cameras: list[CameraConfig] = Field(min_length=1)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

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
