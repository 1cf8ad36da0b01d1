#!/usr/bin/env bash
# Screenshots of TensorBoard's dashboards for a folder of runs, with headless Chromium (Debian: apt install
# chromium). Usage: bash docs/tensorboard_screenshots.sh RUNS_DIR [OUT_DIR]
# The README's images come from `make quickstart`'s runs/ folder.
set -euo pipefail
runs=${1:?a runs folder, e.g. runs}
out=${2:-docs/images}
port=6123
mkdir -p "$out"
.venv/bin/tensorboard --logdir "$runs" --port "$port" >/dev/null 2>&1 &
board=$!
trap 'kill $board' EXIT
until curl -s "localhost:$port/data/plugins_listing" >/dev/null; do sleep 1; done
for dashboard in scalars images pr_curves hparams projector; do
  chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
    --virtual-time-budget=20000 --screenshot="$out/tensorboard_$dashboard.png" \
    "http://localhost:$port/#$dashboard" >/dev/null 2>&1
  echo "$out/tensorboard_$dashboard.png"
done
