"""The config fields the pipeline reads: they default so old configs stay valid, and mistakes name their field."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml

from pipelines.sources import redacted
from streetwatch.config import ConfigError, SourceKind, load_config, source_kind

BASE = {
    "cameras": [
        {
            "id": "cam-1",
            "source": "street.mp4",
            "zones": [{"id": "kerb", "kind": "no_vending", "polygon": [[0, 0.5], [1, 0.5], [1, 1]]}],
        }
    ]
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streetwatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return "\n".join(caught.value.problems)


def test_a_config_without_the_new_fields_gets_their_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, yaml.safe_dump(BASE)))
    zone = cfg.cameras[0].zones[0]
    assert (zone.quiet_s, zone.grace_s, zone.allowed_hours, zone.effective_stationary_tolerance) == (
        600,
        None,
        [],
        0.05,
    )
    assert cfg.cameras[0].permitted == []
    assert (cfg.pipeline.timezone, cfg.pipeline.metrics_port, cfg.pipeline.stall_timeout_s) == ("UTC", None, 10.0)


def test_the_new_fields_load(tmp_path: Path) -> None:
    text = """
pipeline: {timezone: Asia/Shanghai, metrics_port: 9464, stall_timeout_s: 5}
cameras:
  - id: market-cam
    source: rtsp://10.0.0.7/stream1
    permitted: [[0.1, 0.1, 0.3, 0.2]]
    zones:
      - id: night-market
        kind: no_vending
        polygon: [[0, 0.5], [1, 0.5], [1, 1]]
        allowed_hours: [["18:00", "23:30"], ["22:00", "02:00"]]
        quiet_s: 120
        grace_s: 20
        stationary_tolerance: 0.08
"""
    cfg = load_config(write(tmp_path, text))
    cam = cfg.cameras[0]
    assert cam.permitted == [(0.1, 0.1, 0.3, 0.2)]
    assert cam.zones[0].allowed_times == [(time(18, 0), time(23, 30)), (time(22, 0), time(2, 0))]
    assert (cam.zones[0].quiet_s, cam.zones[0].grace_s, cam.zones[0].effective_stationary_tolerance) == (120, 20, 0.08)
    assert cfg.pipeline.timezone == "Asia/Shanghai" and cfg.pipeline.metrics_port == 9464


MISTAKES = [
    ("pipeline:\n  timezone: Mars/Olympus\n", "pipeline.timezone: Value error, unknown time zone 'Mars/Olympus'"),
    ("pipeline:\n  reconnect_initial_s: 10\n  reconnect_max_s: 5\n", "reconnect_max_s must be at least"),
    (
        "cameras:\n- {id: c, source: 'ftp://host/x.mp4'}\n",
        "cameras[0].source: Value error, unsupported scheme 'ftp://'",
    ),
    ("cameras:\n- {id: c, source: -1}\n", "cameras[0].source: Value error, a device index is 0 or more"),
    ("cameras:\n- {id: c, source: a.mp4, permitted: [[0.5, 0.1, 0.2, 0.3]]}\n", "cameras[0].permitted: Value error"),
    ("cameras:\n- {id: c, source: a.mp4, permitted: [[0.1, 0.1, 1.2, 0.3]]}\n", "cameras[0].permitted[0][2]"),
]


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_mistakes_name_their_field(tmp_path: Path, text: str, expected: str) -> None:
    data = yaml.safe_load(text)
    merged = {**BASE, **data}
    assert expected in problems(tmp_path, yaml.safe_dump(merged))


def zone_with(**fields: object) -> str:
    zone = {"id": "kerb", "kind": "no_vending", "polygon": [[0, 0.5], [1, 0.5], [1, 1]], **fields}
    return yaml.safe_dump({"cameras": [{"id": "cam-1", "source": "a.mp4", "zones": [zone]}]})


def test_allowed_hours_are_for_vending_zones_only(tmp_path: Path) -> None:
    text = zone_with(kind="no_parking", allowed_hours=[["18:00", "23:00"]])
    assert "cameras[0].zones[0]: Value error, allowed_hours applies to no_vending zones only" in problems(
        tmp_path, text
    )


def test_unquoted_times_are_explained(tmp_path: Path) -> None:
    # YAML 1.1 reads 18:00 as the number 1080 (base 60); the error says how to write it.
    text = "cameras:\n- id: cam-1\n  source: a.mp4\n  zones:\n  - id: kerb\n    kind: no_vending\n"
    text += "    polygon: [[0, 0.5], [1, 0.5], [1, 1]]\n    allowed_hours: [[18:00, 23:00]]\n"
    assert "write times in quotes" in problems(tmp_path, text)


@pytest.mark.parametrize("bad", [["25:00", "23:00"], ["18:00", "18:00"], ["6pm", "11pm"]])
def test_bad_hours_are_refused(tmp_path: Path, bad: list[str]) -> None:
    assert "cameras[0].zones[0]" in problems(tmp_path, zone_with(allowed_hours=[bad]))


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("/videos/kerb.mp4", SourceKind.FILE),
        ("rtsp://10.0.0.5/stream1", SourceKind.STREAM),
        ("RTSPS://cam.example/live", SourceKind.STREAM),
        ("http://cam.example/video.mjpg", SourceKind.STREAM),
        ("https://cdn.example/live/index.m3u8", SourceKind.STREAM),
        (0, SourceKind.DEVICE),
        ("/dev/video2", SourceKind.DEVICE),
    ],
)
def test_source_kinds(source: str | int, kind: SourceKind) -> None:
    assert source_kind(source) is kind


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
        ("rtsp://10.0.0.5:554/stream1", "rtsp://10.0.0.5:554/stream1"),
        ("https://viewer@cdn.example/live.m3u8", "https://viewer@cdn.example/live.m3u8"),
        (3, "3"),
    ],
)
def test_passwords_in_stream_urls_stay_out_of_the_logs(source: str | int, shown: str) -> None:
    assert redacted(source) == shown
