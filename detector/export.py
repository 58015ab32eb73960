"""Export a .pt model to ONNX or OpenVINO, keeping its class names in the exported metadata."""

from __future__ import annotations

import shutil
from enum import StrEnum
from pathlib import Path

from detector.model import OPENVINO_SUFFIX, shipped_model
from detector.runtime import prepare_runtime


class ExportFormat(StrEnum):
    """The runtimes a model can be exported for."""

    ONNX = "onnx"
    OPENVINO = "openvino"


FORMATS = tuple(f.value for f in ExportFormat)


def export_model(model: Path | None, *, fmt: str, imgsz: int, output: Path | None, state_dir: Path) -> Path:
    """Write `model` (default: the shipped one) as `fmt` with a dynamic batch and input size; returns the written
    path. OpenVINO weights are stored as FP16 (half the size; the CPU computes in its own default precision).

    ultralytics writes next to the source model; the result is moved to `output` when given.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "openvino" and output is not None and not output.name.endswith(OPENVINO_SUFFIX):
        raise ValueError(f"--output: an OpenVINO model folder's name must end in '{OPENVINO_SUFFIX}'")
    source = model or shipped_model()
    if not source.is_file() or source.suffix != ".pt":
        raise FileNotFoundError(f"{source}: export needs an existing .pt model")
    prepare_runtime(state_dir)
    from ultralytics import YOLO

    work = state_dir / "export"
    work.mkdir(parents=True, exist_ok=True)
    staged = work / source.name
    shutil.copyfile(source, staged)
    written = Path(
        YOLO(str(staged)).export(
            format=fmt, imgsz=imgsz, dynamic=True, simplify=True, half=fmt == ExportFormat.OPENVINO
        )
    )
    target = output or source.parent / written.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    shutil.move(str(written), target)
    return target
