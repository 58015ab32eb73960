"""The case service's commands (`serve`, `keys`, `webhooks`, `cases`), added to the streetwatch CLI by
`register(app)`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from pydantic import ValidationError
from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from service.admin import (
    add_webhook,
    issue_key,
    list_keys,
    list_webhooks,
    remove_webhook,
    revoke_key,
    stored_cases,
)
from service.app import create_app
from service.crud import KeyDepartmentError, LastAdminKeyError
from service.db import url_for_display
from service.schemas import CaseStatus, CaseType, EventKind, Role
from service.settings import ServiceSettings

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Folder of the embedded database and evidence.", show_default="./streetwatch-data"
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the case database, e.g. postgresql+psycopg://user:pw@host/db.",
        show_default="SQLite in the state dir",
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """End a command that could not do its job: one unwrapped line on stderr, exit status `code`."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def settings_from_options(
    state_dir: Path | None, database_url: str | None, *, existing: bool = False
) -> ServiceSettings:
    """The settings the options give; with `existing`, a state dir without a case database is refused, naming it
    (a command that only reads state must not turn a mistyped --state-dir into a new, empty database)."""
    # Only options actually given override the STREETWATCH_* environment.
    given: dict[str, object] = {}
    if state_dir is not None:
        given["state_dir"] = state_dir
    if database_url is not None:
        given["database_url"] = database_url
    try:
        settings = ServiceSettings.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"invalid service settings: {problems}", 2)
    database = settings.sqlite_path
    if existing and database is not None and not database.is_file():
        where = "does not exist" if not database.parent.is_dir() else "holds no case database (streetwatch.db)"
        Console(stderr=True).print(
            f"[red]{_state_dir_named(state_dir)}: {settings.state_dir} {where}; give the folder that "
            "`streetwatch serve` or `streetwatch run` uses[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
    return settings


def _state_dir_named(state_dir: Path | None) -> str:
    return "--state-dir" if state_dir is not None else "STREETWATCH_STATE_DIR or the default --state-dir"


@contextmanager
def database_errors(settings: ServiceSettings) -> Iterator[None]:
    try:
        yield
    except ArgumentError as exc:
        fail(f"--database-url: not a database URL SQLAlchemy understands ({exc})", 2)
    except SQLAlchemyError as exc:
        where = url_for_display(settings.resolved_database_url)
        fail(f"cannot use the case database at {where} (check --database-url / --state-dir): {exc}")


def serve(
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Run the case service (API under /api/v1, /healthz, /metrics) until stopped."""
    settings = settings_from_options(state_dir, database_url)
    with database_errors(settings):
        app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="info")


def keys_create(
    role: Annotated[
        Role,
        typer.Option(
            help="agent (posts cases), reviewer (reads, decides, verifies), dispatcher (files, dispatches, closes), "
            "department (handles its department's cases; needs --department) or admin (all)."
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="Who holds the key, for the audit trail.", show_default="ROLE-key")
    ] = None,
    department: Annotated[
        str | None, typer.Option(help="The department a department key acts for (its id, as the API lists it).")
    ] = None,
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print it as the last line (it is stored only as a hash)."""
    settings = settings_from_options(state_dir, database_url)
    database = settings.sqlite_path
    new = database is not None and not database.is_file()
    try:
        with database_errors(settings):
            created = issue_key(settings, role=role, name=name, department_id=department)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--department" if error["loc"][0] == "department_id" else "--name"
        fail(f"{option}: {error['msg']}", 2)
    except KeyDepartmentError as exc:
        fail(f"--department: {exc}", 2)
    Console(stderr=True).print(
        f"Created {created.role.value} key #{created.id} '{created.name}'. It is shown only now:", highlight=False
    )
    if new:
        # The first key of a deployment starts its database: said, so that a mistyped --state-dir shows.
        Console(stderr=True).print(
            f"[yellow]{_state_dir_named(state_dir)}: created a new case database in {settings.state_dir}[/yellow]",
            highlight=False,
        )
    typer.echo(created.key)


def keys_list(state_dir: StateDir = None, database_url: DatabaseUrl = None) -> None:
    """List API keys (without secrets)."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    with database_errors(settings):
        keys = list_keys(settings)
    table = Table("id", "name", "role", "department", "created", "revoked", box=SIMPLE_HEAD)
    for key in keys:
        revoked = "" if key.revoked_at is None else key.revoked_at.isoformat(timespec="seconds")
        created = key.created_at.isoformat(timespec="seconds")
        table.add_row(str(key.id), key.name, key.role.value, key.department_id or "", created, revoked)
    _table_console().print(table)


def keys_revoke(
    key_id: Annotated[int, typer.Argument(metavar="KEY_ID", help="The key's id, as `keys list` shows it.")],
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key; requests carrying it get 401 from then on."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    with database_errors(settings):
        try:
            key = revoke_key(settings, key_id)
        except LastAdminKeyError as exc:
            fail(f"KEY_ID: {exc}")
    if key is None:
        fail(f"KEY_ID: there is no API key {key_id}")
    Console().print(f"Revoked {key.role.value} key #{key.id} '{key.name}'.", highlight=False)


def webhooks_add(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where events are POSTed: an http:// or https:// URL.")],
    kind: Annotated[
        list[EventKind] | None,
        typer.Option("--kind", help="An event kind wanted (repeat for more).", show_default="every kind"),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="The signing secret (16-256 characters). A command line shows in the process list and shell "
            "history: the generated one is safer.",
            show_default="a new random one",
        ),
    ] = None,
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a webhook for the case events from now on; print its signing secret as the last line."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    try:
        with database_errors(settings):
            created = add_webhook(settings, url=url, kinds=kind or [], secret=secret)
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"{'URL' if error['loc'][:1] == ('url',) else '--secret'}: {error['msg']}", 2)
    kinds = ", ".join(created.kinds) or "every kind"
    Console(stderr=True).print(
        f"Created webhook #{created.id} to {created.url} ({kinds}). Its signing secret is shown only now:",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(created.secret)


def webhooks_list(state_dir: StateDir = None, database_url: DatabaseUrl = None) -> None:
    """List webhooks and where their delivery stands (without secrets)."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    with database_errors(settings):
        found = list_webhooks(settings)
    table = Table("id", "url", "kinds", "active", "pending", "last error", "next attempt", box=SIMPLE_HEAD)
    for w in found:
        retry = "" if w.next_attempt_at is None else w.next_attempt_at.isoformat(timespec="seconds")
        kinds = ", ".join(w.kinds) or "all"
        table.add_row(
            str(w.id), w.url, kinds, "yes" if w.active else "paused", str(w.pending), w.last_error or "", retry
        )
    _table_console().print(table)


def webhooks_remove(
    webhook_id: Annotated[
        int, typer.Argument(metavar="WEBHOOK_ID", help="The webhook's id, as `webhooks list` shows it.")
    ],
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove a webhook and its secret; nothing more is sent to it."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    with database_errors(settings):
        removed = remove_webhook(settings, webhook_id)
    if removed is None:
        fail(f"WEBHOOK_ID: there is no webhook {webhook_id}")
    Console().print(f"Removed webhook #{removed.id} to {removed.url}.", highlight=False, soft_wrap=True)


def cases(
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of a table.")] = False,
    status: Annotated[CaseStatus | None, typer.Option(help="Only cases with this status.")] = None,
    case_type: Annotated[CaseType | None, typer.Option("--type", help="Only cases of this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
) -> None:
    """List stored cases, newest first."""
    settings = settings_from_options(state_dir, database_url, existing=True)
    with database_errors(settings):
        found = stored_cases(settings, status=status, case_type=case_type, limit=limit)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    console = _table_console()
    if not found:
        console.print("No cases.")
        return
    table = Table(box=SIMPLE_HEAD)
    for header in ("id", "status", "type", "camera", "zone", "detected at", "conf", "seen", "images"):
        table.add_column(header, overflow="fold")
    for c in found:
        table.add_row(
            str(c.id),
            c.status.value,
            c.type.value,
            c.camera_id,
            c.zone_id,
            c.detected_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{c.confidence:.2f}",
            str(c.sightings),
            str(c.evidence_count),
        )
    console.print(table)


def _table_console() -> Console:
    """A terminal gets tables folded to its width; a pipe or a file gets every value whole, one line per row."""
    console = Console()
    return console if console.is_terminal else Console(width=100_000)


def register(app: typer.Typer) -> None:
    """Add `serve`, `keys create|list|revoke`, `webhooks add|list|remove` and `cases` to a Typer app."""
    keys = typer.Typer(help="Create, list and revoke API keys of the case service.", no_args_is_help=True)
    keys.command("create")(keys_create)
    keys.command("list")(keys_list)
    keys.command("revoke")(keys_revoke)
    app.command("serve")(serve)
    app.add_typer(keys, name="keys")
    hooks = typer.Typer(help="Register, list and remove receivers of the case events.", no_args_is_help=True)
    hooks.command("add")(webhooks_add)
    hooks.command("list")(webhooks_list)
    hooks.command("remove")(webhooks_remove)
    app.add_typer(hooks, name="webhooks")
    app.command("cases")(cases)
