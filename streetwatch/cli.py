"""The `streetwatch` command line: run cameras, the demo, the case service, and train or check models."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from streetwatch.config import ConfigError, StreetwatchConfig, load_config

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
err = Console(stderr=True)

StateDir = Annotated[
    Path, typer.Option("--state-dir", help="Where the embedded service keeps its database and evidence.")
]
DEFAULT_STATE = Path("streetwatch-data")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _load(path: Path) -> StreetwatchConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[red]invalid config {exc.path}[/red]")
        for problem in exc.problems:
            err.print(f"  {problem}")
        raise typer.Exit(2) from None


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="A streetwatch YAML config.")]) -> None:
    """Validate a config file; errors name the field path (cameras[0].zones[1].polygon)."""
    cfg = _load(config)
    zones = sum(len(c.zones) for c in cfg.cameras)
    console.print(f"{config}: OK ({len(cfg.cameras)} cameras, {zones} zones)")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).warning("signal %d: finishing the current batch", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run(cfg: StreetwatchConfig, state_dir: Path, api: str | None, api_key: str | None) -> dict[str, int]:
    from detector.model import Detector, ModelError
    from pipelines.delivery import CaseClient
    from pipelines.runner import run_pipeline
    from service.embedded import EmbeddedService
    from service.settings import ServiceSettings

    try:
        detector = Detector(
            cfg.detector.model,
            state_dir=state_dir,
            imgsz=cfg.detector.imgsz,
            confidence=cfg.detector.confidence,
            device=cfg.detector.device,
        )
    except ModelError as exc:
        err.print(f"[red]detector.model: {exc}[/red]")
        raise typer.Exit(2) from None
    stop = threading.Event()
    _stop_on_signals(stop)
    if api is not None:
        if not api_key:
            err.print("[red]--api-key (or STREETWATCH_API_KEY) is required with --api[/red]")
            raise typer.Exit(2)
        client = CaseClient(api, api_key)
        try:
            stats = run_pipeline(cfg, detector=detector, deliver=client.post, stop=stop)
        finally:
            client.close()
    else:
        with EmbeddedService(ServiceSettings(state_dir=state_dir)) as service:
            client = CaseClient(service.url, service.api_key)
            try:
                stats = run_pipeline(cfg, detector=detector, deliver=client.post, stop=stop)
            finally:
                client.close()
    for cam, reason in stats.failed_cameras.items():
        err.print(f"[red]camera {cam} failed: {reason}[/red]")
    return stats.cases_raised


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="A streetwatch YAML config.")],
    state_dir: StateDir = DEFAULT_STATE,
    api: Annotated[
        str | None, typer.Option(help="Case API base URL; without it the embedded service under --state-dir.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="STREETWATCH_API_KEY", help="Agent API key for --api.")] = None,
) -> None:
    """Watch every camera of CONFIG and raise draft cases (files end when they end; streams run until stopped)."""
    raised = _run(_load(config), state_dir, api, api_key)
    console.print(f"cases raised: {sum(raised.values())} " + ", ".join(f"{c}={n}" for c, n in raised.items()))


@app.command()
def demo(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Run the whole path on a still camera built from ultralytics' bus.jpg, and show the cases it raised."""
    from service.cli import cases
    from streetwatch.demo import write_demo

    config = write_demo(state_dir)
    console.print(f"demo camera and config written to {config.parent}")
    raised = _run(_load(config), state_dir, None, None)
    console.print(f"cases raised by the demo camera: {sum(raised.values())}")
    cases(state_dir=state_dir, database_url=None, as_json=False, status=None, case_type=None, limit=20)
    console.print(
        f"List them again with [bold]streetwatch cases --state-dir {state_dir}[/bold]; serve them with "
        f"[bold]streetwatch serve --state-dir {state_dir}[/bold] and a key from "
        f"[bold]streetwatch keys create --role reviewer --state-dir {state_dir}[/bold] "
        "(GET /api/v1/cases, /api/v1/cases/ID/evidence/0)."
    )


def _register() -> None:
    from detector.cli import register as register_detector
    from service.cli import register as register_service

    register_service(app)
    register_detector(app)


_register()
