#!/usr/bin/env bash
# Model-server benchmark on a GPU with full-size random-weight models (no downloads):
# SAM3 (860M parameters, 1008-pixel frames) and InstructPix2Pix (SD 1.5 size, 512 crops,
# 20 steps), in-process and over gRPC, batch 1/4/8 and 4 concurrent clients, per dtype.
#
#   bash bench/gpu.sh [REPORT_DIR]        # default: bench-gpu/
#
# Needs the project's Python deps and a CUDA GPU; about 2-4 minutes per dtype on one H100/H200.
# Writes REPORT_DIR/report.txt (gpu, tables) and one JSON per dtype.
set -euo pipefail
REPORT_DIR=${1:-bench-gpu}
PY=${PYTHON:-python3}
DTYPES=${DTYPES:-"bfloat16 float16"}
mkdir -p "$REPORT_DIR"
REPORT="$REPORT_DIR/report.txt"
{
  echo "# model-server GPU benchmark, $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, transformers, diffusers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'diffusers', diffusers.__version__)"
} | tee "$REPORT"
for dtype in $DTYPES; do
  workdir=$(mktemp -d)
  status=0
  $PY -m bench.modelserver --random-weights full --device cuda --dtype "$dtype" \
    --json "$REPORT_DIR/modelserver_$dtype.json" --workdir "$workdir" 2>"$workdir/bench.log" | tee -a "$REPORT" || status=$?
  grep -E "peak GPU|instances per frame|warm-up batch" "$workdir/bench.log" "$workdir/modelserver.log" 2>/dev/null \
    | tee -a "$REPORT" || true
  if [ "$status" != 0 ]; then
    echo "bench.modelserver failed for $dtype (exit $status); last lines of its logs:" | tee -a "$REPORT"
    tail -n 40 "$workdir/bench.log" "$workdir"/modelserver.log 2>/dev/null | tee -a "$REPORT"
  fi
done
