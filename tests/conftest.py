"""Shared fixtures: an offline ultralytics runtime for the whole session, and the real data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_WEIGHTS = SHARED_DATA.parent / "weights" / "yolo11n-coco-rebuilt.pt"


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline ultralytics runtime per test session (ultralytics reads its settings once per process)."""
    from detector.runtime import prepare_runtime

    state = tmp_path_factory.mktemp("runtime")
    prepare_runtime(state)
    return state


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real street data is not here ({SHARED_DATA}); it exists on the project's machines and CI")
    return SHARED_DATA


@pytest.fixture(scope="session")
def coco_weights() -> Path:
    """The COCO detector of ../shared/weights, or a skip that says why."""
    if not COCO_WEIGHTS.is_file():
        pytest.skip(f"the COCO detector is not here ({COCO_WEIGHTS}); it exists on the project's machines and CI")
    return COCO_WEIGHTS
