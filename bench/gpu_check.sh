#!/usr/bin/env bash
# One prepared GPU check: every GPU path of the project on one CUDA device, one table at the end.
#
#   bash bench/gpu_check.sh            # PYTHON=python3 by default; BUDGET_S=420 caps each row's time
#
# Rows: Cycles render (GPU, OptiX or CUDA, against CPU), refiner training it/s (CycleGAN 128x128, ngf 64,
# 9 blocks; bf16 autocast, channels_last, eager and torch.compile), SqueezeDet training images/s, the
# video GAN harness it/s (the domain GAN benches that exist), and each row's peak GPU memory.
# Every torch row asks for device "cuda" by name, which pick_device refuses rather than running on the
# CPU, and the render row asks Cycles for device "gpu", which the worker refuses when Cycles finds no GPU.
# The script also greps each row's output for the device it reports. A row that fails, or that reports
# the CPU, makes the script exit 1 after printing the table: a silent CPU fallback cannot pass.
# A missing Python package (bpy, pydantic, ...) fails its row with the import error; carry wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-420}
export PYTHONUNBUFFERED=1
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT

if ! command -v nvidia-smi >/dev/null || ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: FAIL: no CUDA device visible to $PY's torch (nvidia-smi: $(command -v nvidia-smi || echo missing)); nothing was timed" >&2
    exit 1
fi
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
echo "gpu_check on: $GPU; $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"

ROWS=()
FAILED=0
# row NAME EXPECT -- COMMAND...: run COMMAND under the budget; pass when it exits 0 and prints EXPECT
row() {
    local name=$1 expect=$2; shift 3
    local out="$LOG/$name.log" start=$SECONDS status
    echo "== $name: $*"
    timeout "$BUDGET_S" "$@" >"$out" 2>&1
    local rc=$?
    cat "$out"
    if [ $rc -ne 0 ]; then
        status="FAIL (exit $rc$([ $rc -eq 124 ] && echo ", over ${BUDGET_S}s"))"
    elif ! grep -q "$expect" "$out"; then
        status="FAIL (no '$expect' in its output: CPU fallback?)"
    else
        status="ok"
    fi
    [ "$status" = ok ] || FAILED=1
    local result
    result=$(grep -E "it/s|images/s|images/min" "$out" | tr '\n' ';' | sed 's/;$//')
    ROWS+=("$name|$status|$((SECONDS - start)) s|${result:-$(tail -1 "$out")}")
}

row render_gpu "device gpu" -- "$PY" bench/render_speed.py 16 1 gpu
row render_cpu "device cpu" -- "$PY" bench/render_speed.py 16 4 cpu
row refiner "^cuda bf16=True" -- "$PY" bench/refiner_speed.py --device cuda --batch 1 8 32 --steps 20
row refiner_compile "^cuda bf16=True compile=True" -- "$PY" bench/refiner_speed.py --device cuda --batch 8 32 --steps 20 --compile
row squeezedet_train "on cuda" -- "$PY" bench/detector_speed.py --device cuda --train --widths 1.0 --batch 8 32 --iters 20
row video_gan "on cuda" -- "$PY" bench/video_gan_speed.py --device cuda --scale demo seed --batch 16 --steps 20

echo
echo "| row | status | wall | result (peak GPU memory where reported) |"
echo "|---|---|---|---|"
for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    echo "| $a | $b | $c | $d |"
done
if [ $FAILED -ne 0 ]; then
    echo "gpu_check: FAIL: at least one row failed or did not run on the GPU (table above)" >&2
    exit 1
fi
