#!/usr/bin/env bash
# Regenerate docs/images/tensorboard_*.png: what TensorBoard shows after a 3-job sweep.
#
# Trains a β sweep (0.5, 1, 4) of the default VAE on scikit-learn's digits (no download),
# starts TensorBoard on it and takes headless-Chromium screenshots of the scalars, images and
# HPARAMS tabs. Needs chromium (Debian: apt-get install -y chromium).
#
#   scripts/screenshots.sh                 # uses .venv/bin; VAELAB_BIN=... for another venv
#   LOGS=/path/to/logs scripts/screenshots.sh   # screenshots of existing logs, no training
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${VAELAB_BIN:-$ROOT/.venv/bin}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}"
PORT="${PORT:-6123}"
EPOCHS="${EPOCHS:-20}"
OUT="$ROOT/docs/images"
WORK="$(mktemp -d)"
TENSORBOARD_PID=""
cleanup() {
    if [[ -n "$TENSORBOARD_PID" ]]; then kill "$TENSORBOARD_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "${LOGS:-}" ]]; then
    LOGS="$WORK/logs"
    echo "== training a 3-job sweep on data=digits ($EPOCHS epochs each) into $LOGS"
    "$BIN/vaelab-train" --multirun data=digits beta.value=0.5,1,4 "trainer.max_epochs=$EPOCHS" \
        "paths.log_dir=$LOGS" "hydra.sweep.dir=$LOGS/train/multiruns/beta_sweep" \
        callbacks.image_logger.every_n_epochs=5 > "$WORK/sweep.log" 2>&1 || {
        tail -30 "$WORK/sweep.log"
        exit 1
    }
    tail -6 "$WORK/sweep.log"
fi

echo "== TensorBoard on port $PORT"
"$BIN/tensorboard" --logdir "$LOGS" --port "$PORT" --host localhost > "$WORK/tb.log" 2>&1 &
TENSORBOARD_PID=$!
for _ in $(seq 120); do  # until it answers (a readiness poll, up to a minute)
    curl -sf "http://localhost:$PORT/data/runs" > /dev/null && break
    sleep 0.5
done

shoot() {  # shoot <dashboard and its URL state> <file> <window width,height>
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --virtual-time-budget=15000 "--window-size=$3" \
        --screenshot="$OUT/$2" "http://localhost:$PORT/#$1" > /dev/null 2>&1
    echo "wrote $OUT/$2"
}
mkdir -p "$OUT"
shoot "scalars&tagFilter=elbo%7Closs&_smoothingWeight=0" tensorboard_scalars.png 1600,1000
shoot "images&tagFilter=reconstructions%7Cprior_samples" tensorboard_images.png 1600,1000
shoot hparams tensorboard_hparams.png 2200,700
