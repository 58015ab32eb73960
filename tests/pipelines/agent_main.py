"""A camera agent process for the fault tests: the real agent (outbox, case client, metrics, signal handling) with
the colour-blob model in place of YOLO. Prints the run's outcome as JSON on stdout when it ends."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path

from colour_model import ColourDetector

from detector.runtime import prepare_runtime
from pipelines.agent import run_agent, stop_on_signals
from streetwatch.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--api", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prepare_runtime(args.state_dir)
    stop = threading.Event()
    stop_on_signals(stop)
    outcome = run_agent(
        load_config(args.config),
        detector=ColourDetector(),
        api_url=args.api,
        api_key=args.api_key,
        outbox_path=args.state_dir / "outbox.db",
        stop=stop,
        metrics_port=args.metrics_port,
    )
    stats = outcome.stats
    summary = {"cases_raised": stats.cases_raised, "reconnects": stats.reconnects, "left": outcome.left}
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
