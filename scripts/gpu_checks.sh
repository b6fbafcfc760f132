#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md ("GPU"), in stages that each fit a 10-minute call:
#
#   scripts/gpu_checks.sh bench     DATA_DIR OUT_DIR   # the benchmark table on the GPU
#   scripts/gpu_checks.sh precision DATA_DIR OUT_DIR   # 3 epochs per precision: ELBO + images/s
#   scripts/gpu_checks.sh eval      DATA_DIR OUT_DIR   # IW-NLL, k = 5000 on all 10k test images
#
# DATA_DIR holds MNIST/raw/*.gz. Run from the repository root with the package importable
# (installed, or PYTHONPATH=src). Everything the stage measures lands in OUT_DIR as Markdown
# and JSON. DEVICE=cpu QUICK=1 makes a minutes-long dry run of the same steps on a CPU.
set -euo pipefail

stage=${1:?stage: bench | precision | eval}
data_dir=$(realpath "${2:?DATA_DIR with MNIST/raw/*.gz}")
out_dir=$(realpath -m "${3:?OUT_DIR}")
device=${DEVICE:-cuda}
quick=${QUICK:-0}
python=${PYTHON:-python3}
mkdir -p "$out_dir"
export PYTHONUNBUFFERED=1

if [[ $device == cuda ]]; then
    accelerator=gpu
    nvidia-smi -L >"$out_dir/device.txt" 2>&1 || true
else
    accelerator=cpu
fi
"$python" -c "import torch, lightning; print('torch', torch.__version__, 'lightning', \
lightning.__version__)" >>"$out_dir/device.txt"

# a short training run of the default (lecture) model with its data on the device;
# prints nothing but the run dir's metrics.json path
train() {
    local run_dir=$1
    shift
    # ThroughputMonitor: images/s over the last 400 batches, logged every 50 steps
    local epochs=3 limit=() window=401 log_every=50
    if [[ $quick == 1 ]]; then
        epochs=1 window=11 log_every=10
        limit=(trainer.limit_train_batches=20 trainer.limit_val_batches=2 trainer.limit_test_batches=2)
    fi
    "$python" -m vaelab.train print_config=false "paths.data_dir=$data_dir" data.download=false \
        data.on_device=true "trainer.accelerator=$accelerator" trainer.devices=1 \
        "trainer.max_epochs=$epochs" callbacks.progress_bar=null "hydra.run.dir=$run_dir" \
        +callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput \
        "+callbacks.throughput.window_size=$window" "trainer.log_every_n_steps=$log_every" \
        "${limit[@]}" "$@" >"$run_dir.log" 2>&1
}

case $stage in
bench)
    args=(--device "$device" --data-dir "$data_dir" --repeats 3 --iw-nll
        --json "$out_dir/benchmark.json")
    if [[ $quick == 1 ]]; then
        args=(--device "$device" --data-dir "$data_dir" --repeats 1 --timed-images 1024
            --warmup-steps 2 --variants a c d l --json "$out_dir/benchmark.json")
    fi
    "$python" scripts/benchmark.py "${args[@]}" | tee "$out_dir/benchmark.md"
    ;;
precision)
    for precision in 32-true bf16-mixed 16-mixed bf16-true; do
        train "$out_dir/run_$precision" "trainer.precision=$precision" \
            || echo "precision $precision failed: see run_$precision.log" >&2
    done
    "$python" - "$out_dir" <<'EOF' | tee "$out_dir/precision.md"
import json, sys
from pathlib import Path

from vaelab.callbacks.throughput import logged_rate

out = Path(sys.argv[1])
print("| trainer.precision | val −ELBO | test −ELBO | train images/s |")
print("|---|---:|---:|---:|")
for precision in ("32-true", "bf16-mixed", "16-mixed", "bf16-true"):
    path = out / f"run_{precision}" / "metrics.json"
    if not path.exists():
        print(f"| {precision} | failed | | |")
        continue
    m = json.loads(path.read_text())
    rate = logged_rate(out / f"run_{precision}")
    rate_text = f"{rate:,.0f}" if rate else "–"
    print(f"| {precision} | {-m['val/elbo']:.2f} | {-m['test/elbo']:.2f} | {rate_text} |")
EOF
    ;;
eval)
    run_dir="$out_dir/run_eval"
    train "$run_dir"
    samples=5000 limit=null
    if [[ $quick == 1 ]]; then
        samples=50 limit=2
    fi
    start=$(date +%s.%N)
    "$python" -m vaelab.eval "ckpt_path=$run_dir" "data_dir=$data_dir" \
        "eval.num_samples=$samples" eval.chunk_size=100 eval.batch_size=500 \
        "eval.limit_batches=$limit" "eval.device=$device" eval.figures=false \
        >"$out_dir/eval.log" 2>&1
    end=$(date +%s.%N)
    cp "$run_dir/eval/metrics.json" "$out_dir/eval_metrics.json"
    "$python" - "$out_dir" "$samples" "$start" "$end" <<'EOF' | tee "$out_dir/eval.md"
import json, sys
from pathlib import Path

from vaelab.callbacks.throughput import logged_rate

out, samples, start, end = Path(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:])
m = json.loads((out / "eval_metrics.json").read_text())
points = m.get("num_points") or m.get("test/num_points")
print(json.dumps(m, indent=2))
print(f"wall {end - start:.1f} s for k = {samples} on {points} test points (incl. start-up)")
EOF
    ;;
*)
    echo "unknown stage $stage: bench | precision | eval" >&2
    exit 2
    ;;
esac
