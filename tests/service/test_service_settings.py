"""Service settings: environment, defaults, validation, and nothing created before an app is."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from service.app import create_app
from service.db import make_engine
from service.settings import ServiceSettings


def test_defaults_derive_from_the_state_dir_and_create_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = ServiceSettings(state_dir=state)
    assert settings.resolved_database_url == f"sqlite+pysqlite:///{state.resolve()}/streetwatch.db"
    assert settings.resolved_evidence_dir == (state / "evidence").resolve()
    assert (settings.max_evidence_bytes, settings.merge_iou, settings.merge_window_s) == (10 * 1024 * 1024, 0.3, 1800)
    assert settings.bootstrap_agent_key is None
    assert not state.exists()


def test_environment_with_streetwatch_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETWATCH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("STREETWATCH_MERGE_IOU", "0.5")
    monkeypatch.setenv("STREETWATCH_BOOTSTRAP_AGENT_KEY", "sw_from-env")
    settings = ServiceSettings()
    assert (settings.state_dir, settings.merge_iou) == (tmp_path, 0.5)
    assert settings.bootstrap_agent_key is not None
    assert settings.bootstrap_agent_key.get_secret_value() == "sw_from-env"
    assert "sw_from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [("merge_iou", 1.5), ("merge_window_s", -1), ("max_evidence_bytes", 0), ("max_evidence_parts", 0)],
)
def test_bad_values_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        ServiceSettings.model_validate({field: value})


def test_create_app_makes_a_wal_sqlite_database_in_the_state_dir(tmp_path: Path) -> None:
    settings = ServiceSettings(state_dir=tmp_path / "state")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    assert (tmp_path / "state" / "streetwatch.db").is_file()
    engine = make_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
