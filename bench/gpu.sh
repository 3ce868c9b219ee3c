#!/usr/bin/env bash
# The GPU benchmark with full-size random-weight models (no downloads): Edit at 512x512 with 20
# and 50 steps at batch 1/4/8 and the stock diffusers pipeline per crop; SAM3 on 16- and
# 64-frame chunks with injected detections (the tracker really runs); one 1280x720 job through
# both services over gRPC (bench/gpu.py says what each row is).
#
#   bash bench/gpu.sh [REPORT_DIR]        # default: bench-gpu/
#
# Needs the project's Python deps and a CUDA GPU; about 4 minutes on one H100/H200.
# COMPILE=1 adds the same run with the model server's --compile (about 5 minutes more: torch.compile
# warms up every batch size). Writes REPORT_DIR/report.txt and REPORT_DIR/gpu*.json.
set -euo pipefail
REPORT_DIR=${1:-bench-gpu}
PY=${PYTHON:-python3}
mkdir -p "$REPORT_DIR"
REPORT="$REPORT_DIR/report.txt"
{
  echo "# GPU benchmark, $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, transformers, diffusers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'diffusers', diffusers.__version__)"
} | tee "$REPORT"
run() {  # run NAME ARGS...: one bench.gpu run, its table into the report, its log kept on failure
  local name=$1; shift
  local status=0
  $PY -m bench.gpu --random-weights full --device cuda --json "$REPORT_DIR/$name.json" "$@" \
    2>"$REPORT_DIR/$name.log" | tee -a "$REPORT" || status=$?
  if [ "$status" != 0 ]; then
    echo "bench.gpu $* failed (exit $status); last lines of its log:" | tee -a "$REPORT"
    tail -n 40 "$REPORT_DIR/$name.log" | tee -a "$REPORT"
  fi
}
run gpu
if [ "${COMPILE:-0}" = 1 ]; then
  run gpu-compiled --compile
fi
