"""Settings of the case service, read from `STREETWATCH_*` environment variables or given in code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.db import sqlite_url

MB = 1024 * 1024


class ServiceSettings(BaseSettings):
    """Where the case service keeps its data and how it treats incoming cases.

    Constructing it creates nothing: folders and the database appear when an app is created.
    """

    model_config = SettingsConfigDict(env_prefix="STREETWATCH_", extra="forbid")

    state_dir: Path = Field(
        default=Path("streetwatch-data"), description="Folder for the embedded SQLite database and evidence files."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db; default: SQLite under state_dir.",
    )
    evidence_dir: Path | None = Field(default=None, description="Evidence file store; default: state_dir/evidence.")
    max_evidence_bytes: int = Field(default=10 * MB, gt=0, description="Largest accepted evidence image, in bytes.")
    max_evidence_parts: int = Field(default=8, ge=1, le=64, description="Most evidence images in one case post.")
    merge_iou: float = Field(
        default=0.3, ge=0.0, lt=1.0, description="A re-sighting whose box overlaps an open case above this merges."
    )
    merge_window_s: float = Field(
        default=1800.0, ge=0.0, description="How far from an open case's sightings a re-sighting may be, in seconds."
    )
    evidence_sightings: int = Field(
        default=5,
        ge=1,
        description="Sightings whose images a case keeps: its first and its latest N-1 (older re-sightings "
        "stay counted, without images).",
    )
    metrics_access: Literal["key", "open"] = Field(
        default="key",
        description="Who may read /metrics: 'key', any valid API key (Prometheus sends it as a bearer token); "
        "'open', anyone who can reach the port.",
    )
    workers: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Requests the service works on at once, each in a thread of its own holding at most one "
        "database connection; the connection pool holds as many.",
    )
    clock_skew_s: float = Field(
        default=300, ge=0, description="How far a case's detected_at may lie ahead of this service's clock, in seconds."
    )
    console_session_s: float = Field(
        default=12 * 3600, gt=0, description="How long a case console sign-in lasts, in seconds (one shift)."
    )
    console_undo_s: float = Field(
        default=60, ge=0, description="How long after a decision its reviewer may undo it in the console (key u)."
    )
    console_secure_cookie: bool = Field(
        default=False,
        description="Send the console's cookies over HTTPS only; set it when a TLS proxy serves the console.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="How long a webhook receiver has to answer one event, in seconds."
    )
    webhook_retry_base_s: float = Field(
        default=1.0, gt=0, description="The wait before retrying an event a receiver failed; it doubles per failure."
    )
    webhook_retry_max_s: float = Field(
        default=300.0, gt=0, description="The longest wait between retries of an event a receiver keeps failing."
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the webhook worker looks for new events, in seconds."
    )
    bootstrap_agent_key: SecretStr | None = Field(
        default=None,
        description="An extra agent key valid only for this process and never stored (for an embedded pipeline).",
    )

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file in the state folder that holds the cases, or None when `database_url` names a database."""
        return None if self.database_url else self.state_dir.resolve() / "streetwatch.db"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the given one, or a SQLite file in the state folder."""
        return self.database_url or sqlite_url(self.state_dir.resolve() / "streetwatch.db")

    @property
    def resolved_evidence_dir(self) -> Path:
        """The evidence folder in force."""
        return (self.evidence_dir or self.state_dir / "evidence").resolve()

    @property
    def max_request_bytes(self) -> int:
        """The largest case post body: every evidence part at its limit plus room for the case JSON."""
        return self.max_evidence_parts * self.max_evidence_bytes + MB
