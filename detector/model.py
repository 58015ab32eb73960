"""Load a taxonomy detector (.pt, ONNX or OpenVINO) through ultralytics and run it on batches of frames."""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.runtime import prepare_runtime, ultralytics_quiet
from detector.taxonomy import TAXONOMY
from streetwatch.core import Detections

log = logging.getLogger(__name__)

#: The file name of the model that ships inside the package (models/ in the repository).
SHIPPED_MODEL = "streetwatch-n.pt"
#: How ultralytics recognises an OpenVINO model folder.
OPENVINO_SUFFIX = "_openvino_model"
#: The shipped model exported for OpenVINO (`streetwatch export --format openvino`), the default on CPU: 1.6-2x
#: as fast as the .pt on a CPU with AVX-512 BF16, where OpenVINO computes in bfloat16 (bench/README.md).
SHIPPED_OPENVINO = "streetwatch-n" + OPENVINO_SUFFIX


class ModelError(ValueError):
    """A model file is missing, unreadable, or does not speak the taxonomy."""


def shipped_model() -> Path:
    """Path of the shipped weights inside the installed package."""
    path = Path(str(importlib.resources.files("streetwatch.models") / SHIPPED_MODEL))
    if not path.is_file():
        raise ModelError(f"the shipped model {SHIPPED_MODEL} is missing from {path.parent}; reinstall streetwatch")
    return path


def default_model(device: str) -> Path:
    """The model a config without `detector.model` runs: the shipped OpenVINO export on the CPU, else the .pt
    (OpenVINO's ultralytics backend runs on Intel and AMD CPUs; a CUDA device needs the PyTorch weights)."""
    if device != "cpu":
        return shipped_model()
    path = Path(str(importlib.resources.files("streetwatch.models") / SHIPPED_OPENVINO))
    if not path.is_dir():
        raise ModelError(f"the shipped model {SHIPPED_OPENVINO} is missing from {path.parent}; reinstall streetwatch")
    return path


def model_format(path: Path) -> str:
    """'pt', 'onnx' or 'openvino' (a folder holding an OpenVINO .xml), else ModelError."""
    if path.is_dir():
        if not any(path.glob("*.xml")):
            raise ModelError(f"{path} is a folder without an OpenVINO .xml model")
        if not path.name.endswith(OPENVINO_SUFFIX):
            raise ModelError(f"{path}: an OpenVINO model folder's name must end in '{OPENVINO_SUFFIX}'")
        return "openvino"
    suffix = path.suffix.lower()
    if suffix in {".pt", ".onnx"}:
        return suffix[1:]
    if suffix == ".xml":
        return "openvino"
    raise ModelError(f"{path}: unsupported model format '{suffix}' (use .pt, .onnx or an OpenVINO folder)")


def _fingerprint(path: Path) -> str:
    files = sorted(path.glob("*.bin")) + sorted(path.glob("*.xml")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What was loaded: from where, in which format, its classes and a version string for cases."""

    path: Path
    format: str
    names: tuple[str, ...]
    version: str


class Detector:
    """A loaded model that turns a batch of BGR frames into `Detections` with normalised boxes."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        state_dir: Path,
        imgsz: int = 512,
        confidence: float = 0.25,
        device: str = "cpu",
        taxonomy_only: bool = True,
    ) -> None:
        """Load `path` (default: the shipped model, `default_model(device)`). With `taxonomy_only` (the pipeline's
        case) a model whose classes are not all taxonomy names is refused; evaluation also measures others, such as
        a teacher."""
        path = path or default_model(device)
        if not path.exists():
            raise ModelError(f"model file {path} does not exist")
        fmt = model_format(path)
        prepare_runtime(state_dir)
        from ultralytics import YOLO

        if fmt == "openvino" and path.suffix.lower() == ".xml":
            path = path.parent
            model_format(path)
        try:
            self._model: Any = YOLO(str(path), task="detect")
            # One predict loads the model for inference, once: asking for `names` first would load an exported
            # model a second time (a throwaway predictor), and ultralytics announces each load on stdout.
            with ultralytics_quiet():
                self._model.predict(
                    np.zeros((imgsz, imgsz, 3), np.uint8), imgsz=imgsz, conf=confidence, device=device, verbose=False
                )
            raw_names = self._model.predictor.model.names
        except Exception as exc:
            raise ModelError(f"{path}: could not be loaded as a {fmt} model: {exc}") from exc
        names = tuple(raw_names[i] for i in sorted(raw_names))
        unknown = [n for n in names if n not in TAXONOMY]
        if unknown and taxonomy_only:
            raise ModelError(
                f"{path}: classes {unknown} are not in the streetwatch taxonomy; a model must use these names: "
                f"{', '.join(TAXONOMY)}"
            )
        self.info = ModelInfo(path=path, format=fmt, names=names, version=f"{path.stem}-{_fingerprint(path)}")
        self.imgsz = imgsz
        self.confidence = confidence
        self.device = device
        log.info("loaded %s model %s (%d classes)", fmt, self.info.version, len(names))

    def validate(self, data_yaml: Path, *, runs_dir: Path, batch: int = 16) -> Any:
        """ultralytics' detection metrics of this model on the val split of `data_yaml` (in its class indices)."""
        return self._model.val(
            data=str(data_yaml),
            imgsz=self.imgsz,
            batch=batch,
            device=self.device,
            plots=False,
            verbose=False,
            project=str(runs_dir.resolve()),
            name="val",
        )

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect objects in each image (BGR, any size); one `Detections` per image, in order."""
        if not images:
            return []
        results = self._model.predict(
            list(images), imgsz=self.imgsz, conf=self.confidence, device=self.device, verbose=False
        )
        out = []
        for res in results:
            boxes = res.boxes
            n = len(boxes)
            out.append(
                Detections(
                    xyxy=boxes.xyxyn.cpu().numpy().astype(np.float32).reshape(n, 4),
                    confidence=boxes.conf.cpu().numpy().astype(np.float32),
                    class_id=boxes.cls.cpu().numpy().astype(np.int64),
                    tracker_id=np.full(n, -1, np.int64),
                    class_names=self.info.names,
                )
            )
        return out
