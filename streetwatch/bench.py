"""`streetwatch bench`: the pipeline timed on a config's own cameras, and how many such cameras this machine fits."""

from __future__ import annotations

import json
import os
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from service.cli import fail
from streetwatch.loading import detector_or_exit, load_or_exit

if TYPE_CHECKING:
    from pipelines.throughput import Throughput


def bench(
    config: Annotated[Path, typer.Argument(help="A streetwatch YAML config, the one `streetwatch run` takes.")],
    seconds: Annotated[
        float,
        typer.Option(min=1, help="Wall seconds to run the cameras for; file cameras also stop when they end."),
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Run the pipeline on CONFIG's cameras (cases counted, not posted) and print what it costs on this machine:
    analysed and decoded frames/s, CPU seconds per analysed frame, real-time factor, peak RSS, the share of frames
    whose unchanged view skipped the model, and about how many cameras like these this machine keeps up with."""
    from pipelines.throughput import measure_throughput

    cfg = load_or_exit(config)
    # ultralytics needs a runtime folder; a measurement leaves nothing behind.
    os.environ.setdefault("YOLO_VERBOSE", "False")
    with TemporaryDirectory(prefix="streetwatch-bench-") as runtime:
        result = measure_throughput(cfg, detector_or_exit(cfg, Path(runtime)), seconds=seconds)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    for cam, reason in result.failed_cameras.items():
        err.print(f"[red]camera {cam} failed: {reason}[/red]")
    if len(result.failed_cameras) == result.cameras:
        fail(f"every camera failed ({result.cameras} of {result.cameras}, reasons above); nothing was measured")
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        Console(soft_wrap=True, highlight=False).print(report(result))


def report(r: Throughput) -> str:
    """The figures of a run for a person, each with what it means where that is not obvious."""
    per_frame = "-" if r.cpu_s_per_frame is None else f"{r.cpu_s_per_frame:.3f}"
    lines = [
        f"{r.cameras} cameras, {r.wall_s:.1f} s of wall time, {r.cores} cores",
        f"  analysed frames/s         {r.analysed_per_s:.1f}  ({r.frames_analysed} frames)",
        f"  decoded frames/s          {r.decoded_per_s:.1f}  ({r.frames_decoded} frames)",
        f"  CPU s per analysed frame  {per_frame}  (decoding, model, tracking and rules; {r.cpu_s:.1f} CPU s)",
        f"  real-time factor          {r.real_time_factor:.2f}  (seconds of each camera's stream per wall second)",
        f"  peak RSS                  {r.peak_rss_mib:.0f} MiB  (the whole process, the model included)",
        f"  skipped as unchanged      {100 * r.unchanged_share:.0f} %  (analysed frames whose view had not changed)",
        f"  cases raised              {r.cases_raised}  (counted, not posted)",
    ]
    if r.frames_dropped:
        lines.append(f"  dropped                   {r.frames_dropped}  (due frames of live cameras not analysed)")
    kept = r.cameras_kept_up_with
    if kept is None:
        lines.append("no frame was analysed: no estimate of how many cameras this machine keeps up with")
        return "\n".join(lines)
    lines.append(f"this machine keeps up with about {kept} cameras like these")
    due = f"{r.due_per_camera_s:.2f} analysed frames per camera-second"
    lines.append(f"  by CPU: {r.cores} cores / ({per_frame} CPU s per analysed frame x {due}) = {r.cameras_by_cpu}")
    if r.cameras_by_rate is not None:
        lines.append(f"  by measured rate: {r.analysed_per_s:.1f} analysed frames/s / {due} = {r.cameras_by_rate}")
    return "\n".join(lines)
