"""Prepare ultralytics, torch and OpenVINO for an offline machine before their first use.

ultralytics reads its settings from the environment when first imported, so `prepare_runtime` must run
before anything imports it; every module in `detector` that needs ultralytics calls it first.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The logger ultralytics writes its messages to (its LOGGING_NAME).
ULTRALYTICS_LOGGER = "ultralytics"

_prepared: Path | None = None


class OfflineDownloadError(ConnectionError):
    """ultralytics tried to download a file; streetwatch runs offline and refuses.

    A ConnectionError, so that ultralytics' own offline handling (its AMP self-check) still applies.
    """


def _font_from_matplotlib() -> Path:
    from matplotlib import font_manager

    return Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))


def _refuse_download(url: str = "", file: str | Path | None = None, *args: Any, **kwargs: Any) -> None:
    name = Path(str(file)).name if file else url.rsplit("/", 1)[-1]
    raise OfflineDownloadError(
        f"'{name}' is not on this machine and streetwatch does not download files at run time "
        f"(wanted from {url or 'the network'}); put the file at {file or name} or pass its path explicitly"
    )


def _opt_out_of_openvino_telemetry() -> None:
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:
        return
    # Writing the consent file directly: `opt_in_out --opt_out` would first send an opt-out event.
    OptInChecker().update_result(ConsentCheckResult.DECLINED)


def _warnings_and_worse(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


@contextmanager
def ultralytics_quiet() -> Iterator[None]:
    """Hold back ultralytics' info lines, which it prints on stdout even where told verbose=False (loading a
    model, creating its settings file); its warnings and errors still show."""
    logger = logging.getLogger(ULTRALYTICS_LOGGER)
    logger.addFilter(_warnings_and_worse)
    try:
        yield
    finally:
        logger.removeFilter(_warnings_and_worse)


def prepare_runtime(state_dir: Path, threads: int | None = None) -> Path:
    """Make ultralytics offline and self-contained under `state_dir`; returns its config dir.

    Sets `YOLO_OFFLINE`, disables auto-install, puts ultralytics' and matplotlib's config under the state
    dir with a local font for plots, uses `threads` torch threads (default: every core, where ultralytics
    would pick cores-1), turns OpenVINO telemetry off and makes any download attempt fail with a message
    naming the missing file. Safe to call more than once; the first state dir wins.
    """
    global _prepared
    if _prepared is not None:
        return _prepared
    config_dir = (state_dir / "ultralytics").resolve()
    fonts = config_dir / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    n = threads or os.cpu_count() or 1
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("MPLCONFIGDIR", str((state_dir / "matplotlib").resolve()))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    font = _font_from_matplotlib()
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (fonts / name).exists():
            shutil.copyfile(font, fonts / name)
    _opt_out_of_openvino_telemetry()

    import torch

    with ultralytics_quiet():  # its first import in a new config dir announces the settings file it creates
        import ultralytics.utils
    import ultralytics.utils.downloads
    import ultralytics.utils.torch_utils

    torch.set_num_threads(n)
    ultralytics.utils.NUM_THREADS = n
    ultralytics.utils.torch_utils.NUM_THREADS = n  # select_device() resets torch's threads to this
    ultralytics.utils.downloads.safe_download = _refuse_download
    import ultralytics.data.utils

    ultralytics.data.utils.safe_download = _refuse_download
    _prepared = config_dir
    log.debug("ultralytics prepared offline under %s with %d threads", config_dir, n)
    return config_dir
