"""The `streetwatch` command line: run cameras, the demo, the case service, and train or check models."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from service.cli import fail
from streetwatch.config import CameraConfig, StreetwatchConfig
from streetwatch.core import Frame
from streetwatch.loading import detector_or_exit, load_or_exit

if TYPE_CHECKING:
    from detector.model import Detector
    from pipelines.delivery import DeliveryError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir", help="Where the embedded service keeps its database and evidence, and the agent its outbox."
    ),
]
DEFAULT_STATE = Path("streetwatch-data")


#: The packages whose loggers `-v` opens up; every other library logs its warnings only.
OWN_LOGGERS: Final = ("streetwatch", "pipelines", "detector", "service")


@app.callback()
def _main(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log the pipeline's decisions: detections per camera and class, zone entries, dwell progress, "
            "why a stay was dropped.",
        ),
    ] = False,
) -> None:
    if err.is_terminal:
        handler: logging.Handler = RichHandler(console=err, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        # One line per record, never wrapped, with its time and source: logs that grep and log shippers read.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="A streetwatch YAML config.")],
    shallow: Annotated[
        bool,
        typer.Option(
            "--shallow",
            help="Only validate the file; do not open the cameras or load the model (for a machine that cannot "
            "reach them).",
        ),
    ] = False,
) -> None:
    """Validate a config file, then open each camera and load the model as `run` would; every problem is named by
    its field path (cameras[1].source, detector.model) and makes the exit status 2."""
    cfg = load_or_exit(config)
    zones = sum(len(c.zones) for c in cfg.cameras)
    if shallow:
        console.print(f"{config}: valid ({len(cfg.cameras)} cameras, {zones} zones; not opened: --shallow)")
        return
    problems = _open_sources(cfg) + _open_model(cfg)
    if problems:
        err.print(f"[red]config {config}: {len(problems)} of its cameras and model do not work[/red]", highlight=False)
        for problem in problems:
            err.print(f"  {problem}", highlight=False)
        raise typer.Exit(2)
    console.print(f"{config}: OK ({len(cfg.cameras)} cameras opened, {zones} zones, model loaded)")


def _open_sources(cfg: StreetwatchConfig) -> list[str]:
    """Open every camera's source and decode a frame, all at once (a dead stream waits for its timeout); one line
    per camera that fails, naming its field."""
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.sources import SourceError, probe_source

    def probe(cam: CameraConfig) -> str | None:
        try:
            probe_source(cam.source, timeout_s=cfg.pipeline.stall_timeout_s, rtsp_transport=cam.rtsp_transport)
        except SourceError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=min(8, len(cfg.cameras))) as pool:
        results = list(pool.map(probe, cfg.cameras))
    return [f"cameras[{i}].source: {problem}" for i, problem in enumerate(results) if problem is not None]


def _open_model(cfg: StreetwatchConfig) -> list[str]:
    """Load the config's model as `run` would; its problem, naming `detector.model`, or none."""
    from tempfile import TemporaryDirectory

    from detector.model import Detector, ModelError

    # ultralytics needs a runtime folder; checking a config leaves nothing behind, and says nothing about the fresh
    # settings file ultralytics would otherwise announce on stdout.
    os.environ.setdefault("YOLO_VERBOSE", "False")
    with TemporaryDirectory(prefix="streetwatch-check-") as runtime:
        try:
            Detector(cfg.detector.model, state_dir=Path(runtime), imgsz=cfg.detector.imgsz)
        except ModelError as exc:
            return [f"detector.model: {exc}"]
    return []


def _progress(cfg: StreetwatchConfig) -> tuple[Progress, Callable[[Frame], object]] | None:
    """A Rich progress bar per file camera (in stream seconds), or None when no camera reads a file."""
    from pipelines.sources import file_duration_s, is_file_source

    files = [c for c in cfg.cameras if is_file_source(c.source)]
    if not files:
        return None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.fields[length]}"),
        console=err,
    )
    tasks = {}
    for cam in files:
        length = file_duration_s(cam.source)
        tasks[cam.id] = progress.add_task(cam.id, total=length, length="?" if length is None else f"{length:.0f} s")

    def advance(frame: Frame) -> None:
        task = tasks.get(frame.camera_id)
        if task is not None:
            progress.update(task, completed=frame.timestamp_s)

    return progress, advance


def _run(
    cfg: StreetwatchConfig,
    detector: Detector,
    state_dir: Path,
    api: str | None,
    api_key: str | None,
    *,
    outbox: Path | None = None,
    metrics_port: int | None = None,
    show_progress: bool | None = None,
) -> dict[str, int]:
    """Run the agent and report how it went; a run that could not do its job exits 1 with a one-line reason."""
    from pipelines.agent import run_agent, stop_on_signals
    from service.embedded import EmbeddedService
    from service.settings import ServiceSettings

    stop = threading.Event()
    stop_on_signals(stop)
    bars = _progress(cfg) if (err.is_terminal if show_progress is None else show_progress) else None
    outbox_path = outbox or state_dir / "outbox.db"
    with ExitStack() as stack:
        if bars is not None:
            stack.enter_context(bars[0])
        if api is None:
            service = stack.enter_context(EmbeddedService(ServiceSettings(state_dir=state_dir)))
            url, key = service.url, service.api_key
        else:
            url, key = api, api_key or ""
        outcome = run_agent(
            cfg,
            detector=detector,
            api_url=url,
            api_key=key,
            outbox_path=outbox_path,
            stop=stop,
            metrics_port=metrics_port,
            on_frame=bars[1] if bars is not None else None,
        )
    failed = outcome.stats.failed_cameras
    for cam, reason in failed.items():
        err.print(f"[red]camera {cam} failed: {reason}[/red]", soft_wrap=True, highlight=False)
    if outcome.delivery_failure is not None:
        fail(_delivery_failure(outcome.delivery_failure, url, cfg, outcome.left, state_dir, outbox, api is None))
    if len(failed) == len(cfg.cameras):
        fail(f"every camera failed ({len(failed)} of {len(cfg.cameras)}, reasons above); nothing was watched")
    if failed:
        err.print(
            f"[yellow]{len(failed)} of {len(cfg.cameras)} cameras failed (reasons above); the others ran[/yellow]",
            highlight=False,
        )
    if outcome.left:
        err.print(f"[yellow]{outcome.left} cases wait in the outbox; the next run sends them[/yellow]")
    return outcome.stats.cases_raised


def _delivery_failure(
    error: DeliveryError,
    url: str,
    cfg: StreetwatchConfig,
    left: int,
    state_dir: Path,
    outbox: Path | None,
    embedded: bool,
) -> str:
    """Why a run stopped delivering, where its cases are, and the command that sends them once it is fixed."""
    from pipelines.delivery import AgentRefusedError

    where = f"--outbox {outbox}" if outbox is not None else f"--state-dir {state_dir}"
    resend = f"streetwatch outbox --flush {where}" + ("" if embedded else f" --api {url} --api-key KEY")
    kept = f"{left} undelivered cases are kept in the outbox, none is lost"
    if isinstance(error, AgentRefusedError):
        return (
            f"{error} at {url}: the key is wrong, revoked or not an agent key; {kept}; with a valid agent key, "
            f"run `{resend}`"
        )
    bound = cfg.pipeline.service_timeout_s
    return (
        f"the case service at {url} never answered ({error}; a run waits pipeline.service_timeout_s = {bound:g} s "
        f"for it); {kept}; once it answers, run `{resend}`"
    )


Api = Annotated[
    str | None,
    typer.Option(
        help="Case API base URL, e.g. http://cases.example:8080; without it the embedded service under --state-dir."
    ),
]
ApiKey = Annotated[str | None, typer.Option(envvar="STREETWATCH_API_KEY", help="Agent API key for --api.")]


def _check_api(api: str | None, api_key: str | None, state_dir: Path) -> None:
    """--api needs a key, and a key without --api would be silently unused: both are usage errors (exit 2)."""
    if api is not None and not api_key:
        err.print("[red]--api-key (or STREETWATCH_API_KEY) is required with --api[/red]")
        raise typer.Exit(2)
    if api is None and api_key:
        err.print(
            "[red]--api-key (or STREETWATCH_API_KEY) is used only with --api: without --api the cases go to the "
            f"embedded service under {state_dir}, which needs no key[/red]"
        )
        raise typer.Exit(2)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="A streetwatch YAML config.")],
    state_dir: StateDir = DEFAULT_STATE,
    api: Api = None,
    api_key: ApiKey = None,
    outbox: Annotated[
        Path | None, typer.Option(help="The outbox of undelivered cases.", show_default="STATE_DIR/outbox.db")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Serve Prometheus metrics on this port, 0 for any free one (overrides the config)."
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bars for file cameras.", show_default="on a terminal"),
    ] = None,
) -> None:
    """Watch every camera of CONFIG and raise draft cases (files end when they end; streams run until stopped).

    Exits 1 with the reason when the case service refuses the key or never answers, or when every camera failed.
    """
    _check_api(api, api_key, state_dir)
    cfg = load_or_exit(config)
    raised = _run(
        cfg,
        detector_or_exit(cfg, state_dir),
        state_dir,
        api,
        api_key,
        outbox=outbox,
        metrics_port=metrics_port,
        show_progress=progress,
    )
    console.print(f"cases raised: {sum(raised.values())} " + ", ".join(f"{c}={n}" for c, n in raised.items()))


@app.command("outbox")
def outbox_command(
    state_dir: StateDir = DEFAULT_STATE,
    outbox: Annotated[Path | None, typer.Option(help="The outbox file.", show_default="STATE_DIR/outbox.db")] = None,
    requeue: Annotated[
        list[str] | None, typer.Option(help="Send this refused case again (its key); may repeat.")
    ] = None,
    requeue_all: Annotated[bool, typer.Option("--requeue-all", help="Send every refused case again.")] = False,
    flush: Annotated[
        bool,
        typer.Option(
            "--flush",
            help="Deliver what waits now, to --api or the embedded service under --state-dir; exit 1 with the "
            "reason when that cannot be done.",
        ),
    ] = False,
    api: Api = None,
    api_key: ApiKey = None,
    timeout: Annotated[
        float, typer.Option(min=0, help="With --flush: seconds to keep trying before giving up.")
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the refused cases as a JSON array.")] = False,
) -> None:
    """Show what waits in the outbox and the cases the service refused; requeue refused ones once fixed, and
    deliver what waits with --flush."""
    from pipelines.outbox import Outbox

    if flush:
        _check_api(api, api_key, state_dir)
    elif api is not None:
        err.print("[red]--api is used only with --flush[/red]")
        raise typer.Exit(2)
    path = outbox or state_dir / "outbox.db"
    if not path.is_file():
        option = "--outbox" if outbox is not None else "--state-dir"
        err.print(f"[red]{option}: {path} does not exist (no run has used it yet)[/red]", highlight=False)
        raise typer.Exit(2)
    box = Outbox(path)
    try:
        missing = [key for key in requeue or [] if box.requeue(key) == 0]
        moved = box.requeue() if requeue_all else len(requeue or []) - len(missing)
        refused_before, pending_before = len(box.rejected()), box.pending_count()
    finally:
        box.close()
    if missing:
        err.print(f"[red]--requeue: no refused case with key {', '.join(missing)}[/red]")
        raise typer.Exit(2)
    failure = _flush(path, state_dir, api, api_key, timeout) if flush and pending_before else None
    box = Outbox(path)
    try:
        refused, pending = box.rejected(), box.pending_count()
    finally:
        box.close()
    if as_json:
        rows = [
            {"key": r.key, "camera_id": r.camera_id, "reason": r.reason, "rejected_at": r.rejected_at.isoformat()}
            for r in refused
        ]
        typer.echo(json.dumps(rows, indent=2))
    else:
        if moved:
            console.print(
                f"requeued {moved} refused cases; "
                + ("sending them now" if flush else "the next `streetwatch run` (or --flush) sends them")
            )
        if flush:
            console.print(f"delivered {pending_before - pending - (len(refused) - refused_before)} cases")
        console.print(f"{pending} cases wait for delivery in {path}; {len(refused)} were refused")
        if refused:
            table = Table("key", "camera", "refused at", "reason", box=SIMPLE_HEAD)
            for r in refused:
                table.add_row(r.key, r.camera_id, r.rejected_at.strftime("%Y-%m-%d %H:%M:%S"), r.reason)
            console.print(table)
    if failure is not None:
        fail(failure)
    if flush and pending:
        fail(f"{pending} cases could not be delivered within --timeout ({timeout:g} s); they stay in the outbox")
    if flush and len(refused) > refused_before:
        fail(
            f"the service refused {len(refused) - refused_before} cases for good (reasons above); requeue them "
            "with --requeue once the cause is fixed"
        )


def _flush(path: Path, state_dir: Path, api: str | None, api_key: str | None, timeout_s: float) -> str | None:
    """Deliver the outbox at `path`; why it stopped early (a one-line reason), or None."""
    from pipelines.agent import flush_outbox
    from pipelines.delivery import AgentRefusedError
    from service.embedded import EmbeddedService
    from service.settings import ServiceSettings

    with ExitStack() as stack:
        if api is None:
            service = stack.enter_context(EmbeddedService(ServiceSettings(state_dir=state_dir)))
            url, key = service.url, service.api_key
        else:
            url, key = api, api_key or ""
        left, error = flush_outbox(path, api_url=url, api_key=key, timeout_s=timeout_s)
    if error is None:
        return None
    kept = f"{left} undelivered cases are kept in the outbox, none is lost"
    if isinstance(error, AgentRefusedError):
        return (
            f"{error} at {url}: the key is wrong, revoked or not an agent key; {kept}; run again with a valid agent key"
        )
    return f"the case service at {url} never answered within --timeout ({timeout_s:g} s): {error}; {kept}"


@app.command()
def demo(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Run the whole path on a still camera built from ultralytics' bus.jpg, and show the cases it raised."""
    from collections import Counter

    from service.admin import stored_cases
    from service.cli import cases
    from service.schemas import CaseType
    from service.settings import ServiceSettings
    from streetwatch.demo import asset_image, write_demo

    config = write_demo(state_dir)
    console.print(f"demo camera and config written to {config.parent}")
    cfg = load_or_exit(config)
    detector = detector_or_exit(cfg, state_dir)
    (seen,) = detector.detect([asset_image("bus.jpg")])
    console.print(f"the model sees in the demo photo: {dict(Counter(seen.names)) or 'nothing'}")
    raised = _run(cfg, detector, state_dir, None, None)
    console.print(f"cases raised by the demo camera: {sum(raised.values())}")
    cases(state_dir=state_dir, database_url=None, as_json=False, status=None, case_type=None, limit=20)
    found = stored_cases(ServiceSettings(state_dir=state_dir), case_type=CaseType.ILLEGAL_PARKING, limit=1)
    if not found:
        console.print(
            "[yellow]No vehicle stayed in the kerb zone long enough for a parking case: the model did not see the "
            "bus (what it saw is listed above; models/README.md says what it sees well).[/yellow]"
        )
        return
    case = found[0].id
    console.print(
        f"Case {case} holds {found[0].evidence_count} evidence images: the scene with the zone and the bus boxed, "
        "a crop of the bus, and the frame it was first seen in. To see them, serve the cases with "
        f"[bold]streetwatch serve --state-dir {state_dir}[/bold], make a key with "
        f"[bold]streetwatch keys create --role reviewer --state-dir {state_dir}[/bold] (its last line), open "
        f"http://127.0.0.1:8080/console/cases/{case} and sign in with that key; or, from a shell,\n"
        f"  curl -H 'Authorization: Bearer KEY' http://127.0.0.1:8080/api/v1/cases/{case}\n"
        f"  curl -H 'Authorization: Bearer KEY' -o scene.jpg http://127.0.0.1:8080/api/v1/cases/{case}/evidence/0"
    )


def _flags_show_no_type() -> None:
    """Typer 0.29's rich help gives every option a type column, flags included (`--json <bool>`, `--help <bool>`),
    as if they took a value; a flag takes none, so its column stays empty, as in Typer's plain help."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _register() -> None:
    from detector.cli import register as register_detector
    from service.cli import register as register_service
    from streetwatch.bench import bench
    from streetwatch.export import export_reviewed

    register_service(app)
    register_detector(app)
    app.command("export-reviewed")(export_reviewed)
    app.command("bench")(bench)


_flags_show_no_type()
_register()
