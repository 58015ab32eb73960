"""The config tree: the documented shape loads, and every mistake is reported with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.cli import app
from streetwatch.config import ConfigError, ZoneKind, load_config

GOOD = """
cameras:
  - id: cam-curb-01
    source: path/to/video.mp4
    sample_every_s: 2.0
    zones:
      - id: near-curb
        kind: no_parking
        polygon: [[0.0, 0.5], [0.75, 0.55], [0.75, 0.85], [0.0, 0.8]]
        dwell_s: 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streetwatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_shape_loads_and_resolves_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    cam = cfg.cameras[0]
    assert cam.id == "cam-curb-01" and cam.sample_every_s == 2.0
    assert cam.source == str(tmp_path / "path/to/video.mp4")
    assert cam.zones[0].kind is ZoneKind.NO_PARKING and cam.zones[0].effective_dwell_s == 30


def test_stream_and_device_sources_are_kept(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    data["cameras"].append({"id": "rtsp-cam", "source": "rtsp://10.0.0.5/stream1"})
    data["cameras"].append({"id": "usb-cam", "source": 0})
    cfg = load_config(write(tmp_path, yaml.safe_dump(data)))
    assert [c.source for c in cfg.cameras[1:]] == ["rtsp://10.0.0.5/stream1", 0]


def mutate(path: str, value: object) -> str:
    data = yaml.safe_load(GOOD)
    target = data
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in path.split("/")]
    for k in keys[:-1]:
        target = target[k]
    target[keys[-1]] = value
    return yaml.safe_dump(data)


BAD = [
    ("cameras/0/zones/0/polygon", [[0.0, 0.5], [1.5, 0.5], [0.5, 0.9]], "cameras[0].zones[0].polygon[1][0]"),
    ("cameras/0/zones/0/polygon", [[0.0, 0.5], [0.5, 0.5]], "cameras[0].zones[0].polygon"),
    ("cameras/0/zones/0/polygon", [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "cameras[0].zones[0].polygon"),
    ("cameras/0/zones/0/kind", "no_spitting", "cameras[0].zones[0].kind"),
    ("cameras/0/zones/0/dwell_s", -5, "cameras[0].zones[0].dwell_s"),
    ("cameras/0/sample_every_s", 0, "cameras[0].sample_every_s"),
    ("cameras/0/colour", "red", "cameras[0].colour"),
    ("cameras/0/id", "has space", "cameras[0].id"),
    ("cameras", [], "cameras"),
    ("cameras/0/recorded_at", "2026-11-30 08:00:00", "cameras[0].recorded_at"),  # no UTC offset
    ("cameras/0/recorded_at", "1970-01-01T00:00:00Z", "cameras[0].recorded_at"),
    ("cameras/0/zones/0/stationary_box_share", -0.5, "cameras[0].zones[0].stationary_box_share"),
    ("cameras/0/rtsp_transport", "quic", "cameras[0].rtsp_transport"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD, ids=[b[2] + "=" + str(b[1]) for b in BAD])
def test_invalid_field_is_named(tmp_path: Path, path: str, value: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, mutate(path, value)))
    assert any(p.startswith(field + ":") for p in info.value.problems), info.value.problems


def test_recorded_at_is_for_files_and_keeps_its_offset(tmp_path: Path) -> None:
    data = yaml.safe_load(mutate("cameras/0/recorded_at", "2026-11-30T08:00:00+08:00"))
    assert str(load_config(write(tmp_path, yaml.safe_dump(data))).cameras[0].recorded_at) == "2026-11-30 08:00:00+08:00"
    data["cameras"][0]["source"] = "rtsp://10.0.0.5/stream1"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, yaml.safe_dump(data)))
    assert any(
        p.startswith("cameras[0]:") and "recorded_at applies to video files only" in p for p in info.value.problems
    )


def test_rtsp_transport_is_for_rtsp_cameras_and_defaults_to_tcp(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    data["cameras"][0]["source"] = "rtsp://10.0.0.5/stream1"
    assert load_config(write(tmp_path, yaml.safe_dump(data))).cameras[0].rtsp_transport == "tcp"
    data["cameras"][0]["rtsp_transport"] = "udp"
    assert load_config(write(tmp_path, yaml.safe_dump(data))).cameras[0].rtsp_transport == "udp"
    data["cameras"][0]["source"] = "http://10.0.0.5/live.m3u8"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, yaml.safe_dump(data)))
    assert any(
        p.startswith("cameras[0]:") and "rtsp_transport applies to rtsp:// and rtsps:// cameras only" in p
        for p in info.value.problems
    ), info.value.problems


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    data["cameras"][0]["zones"].append(dict(data["cameras"][0]["zones"][0]))
    with pytest.raises(ConfigError, match="zone id 'near-curb' is used twice"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_check_config_cli_exits_nonzero_and_names_the_field(tmp_path: Path) -> None:
    bad = write(tmp_path, mutate("cameras/0/zones/0/kind", "no_spitting"))
    result = CliRunner().invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert "cameras[0].zones[0].kind" in result.output


def test_check_config_cli_accepts_a_good_file(tmp_path: Path) -> None:
    # --shallow: the file only (tests/streetwatch/test_check_config.py opens the cameras and the model).
    result = CliRunner().invoke(app, ["check-config", "--shallow", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "valid (1 cameras, 1 zones; not opened: --shallow)" in result.output


@pytest.mark.parametrize("text", ["cameras: [", "- just\n- a list", ""])
def test_unreadable_yaml_is_reported(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))
