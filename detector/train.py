"""Train a taxonomy detector with ultralytics from a pretrained start, on CPU or GPU."""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.pretrained import ARCHITECTURE, start_weights
from detector.runtime import prepare_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """What a training run needs; the defaults are the shipped model's CPU recipe."""

    data: Path
    output: Path
    state_dir: Path
    start: Path | None = None
    imgsz: int = 512
    epochs: int = 30
    hours: float | None = None
    freeze: int = 0
    batch: int = 16
    device: str = "cpu"
    workers: int = 2
    fraction: float = 1.0
    warmup_epochs: float = 3.0
    close_mosaic: int = 10
    cache: bool = False
    plots: bool = True
    seed: int = 0


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Where the trained weights went and the run folder with ultralytics' logs."""

    weights: Path
    run_dir: Path


def _trainer_class() -> type[Any]:
    from ultralytics.models.yolo.detect import DetectionTrainer

    class Trainer(DetectionTrainer):  # type: ignore[misc]
        """ultralytics' detection trainer, reading its results CSV without polars."""

        def read_results_csv(self) -> dict[str, list[float]]:
            if not self.csv.exists():
                return {}
            with self.csv.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            return {k.strip(): [float(r[k]) for r in rows] for k in rows[0]} if rows else {}

    return Trainer


def train(settings: TrainSettings) -> TrainResult:
    """Run one training and copy the best weights to `settings.output`.

    The detection model is built from `yolo11n.yaml` with the taxonomy's classes, and every layer whose
    name and shape match is loaded from the start weights (for yolo11n-pose: backbone, neck and box head;
    only the class logits start from scratch).
    """
    prepare_runtime(settings.state_dir)
    from ultralytics import YOLO

    start = settings.start or start_weights()
    if not start.is_file():
        raise FileNotFoundError(f"start weights {start} do not exist")
    if not settings.data.is_file():
        raise FileNotFoundError(f"dataset file {settings.data} does not exist (build it with build-dataset)")
    model = YOLO(ARCHITECTURE).load(str(start))
    project = (settings.state_dir / "runs").resolve()
    extra: dict[str, Any] = {"time": settings.hours} if settings.hours else {}
    model.train(
        trainer=_trainer_class(),
        data=str(settings.data),
        imgsz=settings.imgsz,
        epochs=settings.epochs,
        freeze=settings.freeze or None,
        batch=settings.batch,
        device=settings.device,
        workers=settings.workers,
        fraction=settings.fraction,
        warmup_epochs=settings.warmup_epochs,
        close_mosaic=settings.close_mosaic,
        cache="ram" if settings.cache else False,
        plots=settings.plots,
        seed=settings.seed,
        project=str(project),
        name="train",
        exist_ok=False,
        pretrained=True,
        **extra,
    )
    trainer = model.trainer
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, settings.output)
    log.info("trained weights copied to %s (run in %s)", settings.output, trainer.save_dir)
    return TrainResult(weights=settings.output, run_dir=Path(trainer.save_dir))
