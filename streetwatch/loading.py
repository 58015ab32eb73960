"""What the pipeline commands (`run`, `check-config`, `bench`) run on, loaded the one way all of them report a bad
one: the offending field named on stderr, exit status 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from streetwatch.config import ConfigError, StreetwatchConfig, load_config

if TYPE_CHECKING:
    from detector.model import Detector

err = Console(stderr=True, soft_wrap=True)


def load_or_exit(path: Path) -> StreetwatchConfig:
    """The config at `path`; an invalid one prints each problem by its field path and exits 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]invalid config {exc.path}[/red]")
        for problem in exc.problems:
            err.print(f"  {problem}")
        raise typer.Exit(2) from None


def detector_or_exit(cfg: StreetwatchConfig, state_dir: Path) -> Detector:
    """The config's model, loaded; a model that cannot be used exits 2 naming `detector.model`."""
    from detector.model import Detector, ModelError

    try:
        return Detector(
            cfg.detector.model,
            state_dir=state_dir,
            imgsz=cfg.detector.imgsz,
            confidence=cfg.detector.confidence,
            device=cfg.detector.device,
        )
    except ModelError as exc:
        err.print(f"[red]detector.model: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
