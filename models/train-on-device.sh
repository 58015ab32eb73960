#!/usr/bin/env bash
# The shipped model's full training run on a lent GPU machine (see models/README.md), in two steps:
#   models/train-on-device.sh prepare [BUILT]  # here: build the dataset (or copy BUILT, the same
#                                              # build-dataset output), pack it with the wheels in parts
#   models/train-on-device.sh                  # there, once every part is there: weights and logs to $OUT
# prepare builds the recipe compact (512 px WebP), keeps every fourth val image for the per-epoch check
# and packs dataset, start weights (the COCO detector of ../shared/weights) and the ultralytics wheels of
# pyproject.toml's pins into one archive, split into parts of at most PART_MIB (default 40) so that each
# part fits one device call beside the checkout (64 MiB a call in all; the v2 archive is about 89 MiB).
# Upload them in calls back to back, each carrying one part and .gpu/bundle.sha256: every part but the last
# with the command `true`, the last with this script (a machine idle for 30 s goes back and takes the parts
# with it; the run then says so). The dataset has two data files: data.yaml (full labels) and
# data_partial.yaml (partial labels, see models/README.md).
# The run trains each data file named in ARMS (default: data) for HOURS, one after the other, into
# $OUT/ARM/ (ARMS="data data_partial" HOURS=0.07 is an A/B in one call), from that COCO detector unless
# START names another .pt; run folders live under $OUT, so a run cut short still returns its weights.
set -euo pipefail
if [[ "${1:-}" == prepare ]]; then
    rm -rf .gpu && mkdir -p .gpu/bundle/whl
    if [[ -n "${2:-}" ]]; then
        cp -r "$2" .gpu/bundle/data
    else
        streetwatch build-dataset datasets/streetwatch-v2.yaml --max-side 512 --format webp --quality 60 \
            --out .gpu/bundle/data
    fi
    python3 - <<'PY'
from pathlib import Path
import yaml
from detector.dataset import annotated_classes
from detector.recipes import load_mix
data = Path(".gpu/bundle/data")
for listing in data.glob("val_*"):
    listing.unlink()
val = sorted((data / "images" / "val").iterdir())
for image in val:
    if image not in val[::4]:
        image.unlink()
        (data / "labels" / "val" / f"{image.stem}.txt").unlink()
(data / "val_subset.txt").write_text("".join(f"./images/val/{p.name}\n" for p in val[::4]))
plain = {**yaml.safe_load((data / "data.yaml").read_text()), "val": "val_subset.txt"}
plain.pop("annotated", None)
partial = {**plain, "annotated": annotated_classes(*load_mix(Path("datasets/streetwatch-v2.yaml")))}
(data / "data.yaml").write_text(yaml.safe_dump(plain, sort_keys=False))
(data / "data_partial.yaml").write_text(yaml.safe_dump(partial, sort_keys=False))
PY
    cp "$(python3 -c 'from detector.pretrained import resolve_weights; print(resolve_weights("coco"))')" .gpu/bundle/
    pins=$(grep -oE '"ultralytics(-thop)?==[^"]+"' pyproject.toml | tr -d '"')
    python3 -m pip download -q --no-deps -d .gpu/bundle/whl $pins
    tar czf .gpu/bundle.tgz -C .gpu bundle && rm -rf .gpu/bundle
    (cd .gpu && sha256sum bundle.tgz > bundle.sha256)
    split -b "${PART_MIB:-40}m" -d .gpu/bundle.tgz .gpu/bundle.part- && rm .gpu/bundle.tgz
    tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
    echo "checkout: $((tree / 1048576)) MiB travels with each call (64 MiB in all); carry one part a call:"
    ls -la .gpu/bundle.part-*
    exit 0
fi
shopt -s nullglob
parts=(.gpu/bundle.part-*)
if [[ ! -f .gpu/bundle.sha256 || ${#parts[@]} -eq 0 ]] \
    || ! (cat "${parts[@]}" > .gpu/bundle.tgz && cd .gpu && sha256sum --quiet -c bundle.sha256 > /dev/null 2>&1); then
    echo "the bundle is incomplete (parts here: ${parts[*]:-none}): the machine went back between the upload" \
        "calls or a part or .gpu/bundle.sha256 was not carried; upload every part again, back to back" >&2
    exit 3
fi
tar xzf .gpu/bundle.tgz -C .gpu && rm .gpu/bundle.tgz
ARMS=${ARMS:-data} HOURS=${HOURS:-0.13} START=${START:-.gpu/bundle/yolo11n-coco-rebuilt.pt}
DEVICE=${DEVICE:-0} WORKERS=${WORKERS:-14}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/bundle/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for arm in $ARMS; do
    mkdir -p "$OUT/$arm"
    sed -i "s#^path: .*#path: $PWD/.gpu/bundle/data#" ".gpu/bundle/data/$arm.yaml"
    python3 - <<PY 2>&1 | tee "$OUT/$arm/train.log" | grep -v -E "it/s|s/it" || true
import logging, shutil
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from detector.train import TrainSettings, train
out = Path("$OUT/$arm")
r = train(TrainSettings(
    data=Path(".gpu/bundle/data/$arm.yaml"), output=out / "streetwatch-n.pt", state_dir=out / "state",
    start=Path("$START"), imgsz=512, epochs=100, hours=$HOURS, batch=64, device="$DEVICE",
    workers=$WORKERS, cache=True, plots=False,
))
for name in ("results.csv", "args.yaml"):
    shutil.copyfile(r.run_dir / name, out / name)
PY
done
find "$OUT" -maxdepth 2 -name "*.pt" -o -maxdepth 2 -name results.csv | xargs -r ls -la
