"""How fast the whole pipeline runs on this machine: one timed run's frames, CPU and memory, and how many cameras fit.

The run is the real pipeline (decode, view-change skipping, the model, tracking, the zone rules, evidence) on a
config's cameras, with the cases it raises counted and dropped rather than posted: posting a case costs nothing
next to the frames, and a measurement must not put cases in front of reviewers. `streetwatch bench` and
`bench/pipeline_throughput.py` both measure through `measure_throughput`.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from pipelines.metrics import PipelineMetrics
from pipelines.runner import BatchDetector, Pipeline
from pipelines.sources import is_file_source
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Frame

#: The frame the model sees once before the clock starts: its first call sets up what every later one reuses.
WARM_UP_SHAPE: Final = (480, 640, 3)


def cpu_seconds() -> float:
    """CPU time this process has used so far, every thread and both user and system time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """The most resident memory this process has held so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, which a container's CPU set narrows)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True, slots=True)
class Throughput:
    """What one timed run of the pipeline did and cost; the derived figures are properties."""

    cameras: int
    wall_s: float
    """From the start of the run (the sources opening) to its end."""
    cpu_s: float
    """CPU time of the whole process over `wall_s`: decoding, the model, tracking, rules and evidence."""
    camera_s: float
    """Seconds of stream time the analysed frames stand for (each `sample_every_s` of its camera), summed."""
    camera_wall_s: float
    """Wall seconds each camera was running (until its file ended, or to the end), summed over the cameras."""
    frames_decoded: int
    frames_analysed: int
    frames_unchanged: int
    """Analysed frames whose view had not changed: tracks carried forward, no model run."""
    frames_dropped: int
    """Due frames of live cameras the pipeline had no time for."""
    cases_raised: int
    peak_rss_mib: float
    """The process's peak resident memory, the model's included."""
    cores: int
    due_per_camera_s: float
    """Analysed frames one camera needs per second of its stream (1 / sample_every_s, averaged over cameras)."""
    files_only: bool
    """Every camera is a file, read as fast as the pipeline goes (not at the cameras' own pace)."""
    failed_cameras: dict[str, str] = field(default_factory=dict)

    @property
    def analysed_per_s(self) -> float:
        """Analysed frames per wall second, over all cameras."""
        return self.frames_analysed / self.wall_s

    @property
    def decoded_per_s(self) -> float:
        """Decoded frames per wall second, over all cameras."""
        return self.frames_decoded / self.wall_s

    @property
    def cpu_s_per_frame(self) -> float | None:
        """CPU seconds per analysed frame, everything included; None when no frame was analysed."""
        return self.cpu_s / self.frames_analysed if self.frames_analysed else None

    @property
    def real_time_factor(self) -> float:
        """Seconds of each camera's stream per wall second: at 1.0 or more the pipeline keeps up with them live.

        A live camera cannot run ahead of itself, so with live cameras this is at most about 1.0; below 1.0 their
        due frames were dropped.
        """
        return self.camera_s / self.camera_wall_s if self.camera_wall_s > 0 else 0.0

    @property
    def unchanged_share(self) -> float:
        """Share of the analysed frames that skipped the model because their view had not changed."""
        return self.frames_unchanged / self.frames_analysed if self.frames_analysed else 0.0

    @property
    def cameras_by_cpu(self) -> int | None:
        """Cameras like these the cores can serve: cores / (CPU s per analysed frame x frames due per
        camera-second). Assumes the work spreads over every core, as decoding and the model's threads do."""
        per_frame = self.cpu_s_per_frame
        if per_frame is None:
            return None
        return math.floor(self.cores / (per_frame * self.due_per_camera_s))

    @property
    def cameras_by_rate(self) -> int | None:
        """Cameras like these the measured rate serves: analysed frames/s / frames due per camera-second. Only
        where every camera is a file (live cameras pace the rate themselves); it catches what keeps the pipeline
        from using every core, and other work on the machine."""
        if not self.files_only or not self.frames_analysed:
            return None
        return math.floor(self.analysed_per_s / self.due_per_camera_s)

    @property
    def cameras_kept_up_with(self) -> int | None:
        """About how many cameras like these this machine keeps up with: the lower of the two estimates."""
        estimates = [k for k in (self.cameras_by_cpu, self.cameras_by_rate) if k is not None]
        return min(estimates) if estimates else None

    def as_dict(self) -> dict[str, object]:
        """Every measured and derived figure, for JSON."""
        return {
            "cameras": self.cameras,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "camera_s": round(self.camera_s, 3),
            "frames_decoded": self.frames_decoded,
            "frames_analysed": self.frames_analysed,
            "frames_unchanged": self.frames_unchanged,
            "frames_dropped": self.frames_dropped,
            "cases_raised": self.cases_raised,
            "analysed_per_s": round(self.analysed_per_s, 3),
            "decoded_per_s": round(self.decoded_per_s, 3),
            "cpu_s_per_analysed_frame": None if self.cpu_s_per_frame is None else round(self.cpu_s_per_frame, 4),
            "real_time_factor": round(self.real_time_factor, 3),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "unchanged_share": round(self.unchanged_share, 4),
            "cores": self.cores,
            "due_per_camera_s": round(self.due_per_camera_s, 4),
            "cameras_by_cpu": self.cameras_by_cpu,
            "cameras_by_rate": self.cameras_by_rate,
            "cameras_kept_up_with": self.cameras_kept_up_with,
            "failed_cameras": self.failed_cameras,
        }


def measure_throughput(
    config: StreetwatchConfig, detector: BatchDetector, *, seconds: float | None = None
) -> Throughput:
    """Run the pipeline on `config`'s cameras for `seconds` of wall time (or until every file has ended) and
    measure it. The model sees one blank frame before the clock starts; the cases raised are counted, not posted.
    """
    detector.detect([np.zeros(WARM_UP_SHAPE, np.uint8)])
    metrics = PipelineMetrics()
    every = {cam.id: cam.sample_every_s for cam in config.cameras}
    analysed = dict.fromkeys(every, 0)
    last_at: dict[str, float] = {}

    def seen(frame: Frame) -> None:
        analysed[frame.camera_id] += 1
        last_at[frame.camera_id] = time.perf_counter()

    pipeline = Pipeline(config, detector=detector, deliver=lambda _draft: None, metrics=metrics, on_frame=seen)
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set) if seconds is not None else None
    start, cpu = time.perf_counter(), cpu_seconds()
    if timer is not None:
        timer.start()
    try:
        stats = pipeline.run(stop)
    finally:
        if timer is not None:
            timer.cancel()
    end = time.perf_counter()
    cpu = cpu_seconds() - cpu

    def total(name: str) -> int:
        return round(sum(metrics.registry.get_sample_value(name, {"camera": c}) or 0.0 for c in every))

    return Throughput(
        cameras=len(every),
        wall_s=end - start,
        cpu_s=cpu,
        camera_s=sum(n * every[c] for c, n in analysed.items()),
        camera_wall_s=sum(last_at.get(c, end) - start for c in every if c not in stats.failed_cameras),
        frames_decoded=total("streetwatch_frames_decoded_total"),
        frames_analysed=sum(analysed.values()),
        frames_unchanged=total("streetwatch_frames_unchanged_total"),
        frames_dropped=total("streetwatch_frames_dropped_total"),
        cases_raised=sum(stats.cases_raised.values()),
        peak_rss_mib=peak_rss_mib(),
        cores=usable_cores(),
        due_per_camera_s=sum(1 / s for s in every.values()) / len(every),
        files_only=all(is_file_source(cam.source) for cam in config.cameras),
        failed_cameras=dict(stats.failed_cameras),
    )
