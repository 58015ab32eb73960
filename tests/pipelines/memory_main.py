"""Run the pipeline on a config's cameras with the colour-blob model in a process of its own and print, as JSON,
its peak resident memory and how many frames it analysed (the memory test compares runs of different sizes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from colour_model import ColourDetector

from detector.runtime import prepare_runtime
from pipelines.throughput import measure_throughput
from streetwatch.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args()
    prepare_runtime(args.state_dir)
    measured = measure_throughput(load_config(args.config), ColourDetector())
    figures = {"peak_rss_mib": measured.peak_rss_mib, "frames_analysed": measured.frames_analysed}
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
