"""`streetwatch export-reviewed`: reviewers' decisions (service) written as a YOLO dataset (detector)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from detector.reviewed import DEFAULT_NEGATIVE_REASONS, ReviewedImage, write_reviewed_dataset
from service.cli import DatabaseUrl, StateDir, database_errors, fail, settings_from_options
from service.export import ReviewedCase, reviewed_cases


def _time(option: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-12-01 or 2026-12-01T08:00:00+08:00)", 2)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def export_reviewed(
    since: Annotated[
        str, typer.Option(help="Cases decided at or after this ISO 8601 time (UTC unless it has an offset).")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the YOLO dataset to.")],
    until: Annotated[str | None, typer.Option(help="...and before this ISO 8601 time.")] = None,
    negative_reason: Annotated[
        list[str] | None,
        typer.Option(
            help="A rejection whose reason starts with this becomes a hard negative (repeatable; '' for every "
            "rejection). Other rejections are left out.",
            show_default="wrong object",
        ),
    ] = None,
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write confirmed and rejected cases as a YOLO dataset for `streetwatch train` (see datasets/README.md)."""
    start = _time("--since", since)
    end = None if until is None else _time("--until", until)
    if end is not None and end <= start:
        fail("--until: must be later than --since", 2)
    if out.exists() and any(out.iterdir()):
        fail(f"--out: {out} is not empty; give a new folder", 2)
    settings = settings_from_options(state_dir, database_url, existing=True)
    images: list[ReviewedImage] = []
    skipped: dict[int, str] = {}
    with database_errors(settings):
        for case in reviewed_cases(settings, since=start, until=end):
            if isinstance(case, ReviewedCase):
                images.append(
                    ReviewedImage(case.case_id, case.confirmed, case.label, case.box, case.reason, case.image)
                )
            else:
                skipped[case.case_id] = case.why
    reasons = DEFAULT_NEGATIVE_REASONS if negative_reason is None else tuple(negative_reason)
    report = write_reviewed_dataset(images, out, negative_reasons=reasons)
    skipped.update(report.skipped)
    console = Console(soft_wrap=True)  # a path or digest stays whole on its line
    for case_id, why in sorted(skipped.items()):
        console.print(f"case {case_id} left out: {why}", highlight=False)
    console.print(
        f"exported {report.positives} confirmed and {report.negatives} hard-negative cases to {out} "
        f"(train with: streetwatch train --data {out / 'data.yaml'})",
        highlight=False,
    )
