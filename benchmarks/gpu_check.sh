#!/usr/bin/env bash
# One GPU, under 8 minutes, offline (every model is built from its config with random weights):
#   1. SDXL, FLUX.2 [klein] 4B and Qwen-Image-Edit-2509: 3 shots each at 1024², through the diffusers
#      backend (two characters with sheets: two reference images for the multi-reference families)
#      and as a plain pipeline call with the same arguments (benchmarks/render.py --check);
#   2. 50 LoRA training steps on SDXL (benchmarks/train_lora.py, when it is there);
#   3. one Wan2.2-TI2V-5B clip and one LTX-Video clip at native size (benchmarks/animate_gpu.py).
# Prints a table per part; writes $OUT/gpu_check.json when OUT is set.
#   NOVELCOMIC_GPU_CHECK_TINY=1 benchmarks/gpu_check.sh   # tiny models on the CPU: checks the script itself
#   benchmarks/gpu_check.sh --dry-run                      # says what it would run, runs nothing
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUT_DIR="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
MODE=gpu; [ "${NOVELCOMIC_GPU_CHECK_TINY:-}" = "1" ] && MODE=tiny
if [ "${1:-}" = "--dry-run" ]; then
  echo "mode: $MODE; python: $PY; output: $OUT_DIR"
  echo "1. $PY benchmarks/render.py --check"
  if [ -f benchmarks/train_lora.py ]; then echo "2. $PY benchmarks/train_lora.py --steps 50"; else echo "2. (no benchmarks/train_lora.py: skipped)"; fi
  echo "3. $PY benchmarks/animate_gpu.py --models wan22,ltx --steps 4"
  exit 0
fi
start=$(date +%s)
"$PY" - <<'PYEOF' 2>&1 | tee -a "$LOG"
import torch, diffusers, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}; {gpu}")
PYEOF

echo "== 1. render: s/shot, backend vs plain pipeline call ==" | tee -a "$LOG"
OUT="$OUT_DIR" "$PY" benchmarks/render.py --check 2>>"$LOG.stderr" | tee -a "$LOG"
render_rc=${PIPESTATUS[0]}

echo "== 2. LoRA training, 50 steps on SDXL ==" | tee -a "$LOG"
train_rc=skipped
if [ -f benchmarks/train_lora.py ]; then
  "$PY" benchmarks/train_lora.py --steps 50 2>>"$LOG.stderr" | tee "$OUT_DIR/train_lora.out" | tee -a "$LOG"
  train_rc=${PIPESTATUS[0]}
else
  echo "benchmarks/train_lora.py is not there: skipped" | tee -a "$LOG"
fi

echo "== 3. animate: one Wan2.2-TI2V-5B and one LTX clip, s/clip and peak VRAM ==" | tee -a "$LOG"
"$PY" benchmarks/animate_gpu.py --models wan22,ltx --steps 4 2>>"$LOG.stderr" | tee "$OUT_DIR/animate.out" | tee -a "$LOG"
animate_rc=${PIPESTATUS[0]}

"$PY" - "$OUT_DIR" "$render_rc" "$train_rc" "$MODE" "$(( $(date +%s) - start ))" <<'PYEOF'
import json, sys
from pathlib import Path
out, render_rc, train_rc, mode, seconds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
render = json.loads((out / "render_check.json").read_text()) if (out / "render_check.json").is_file() else None
train = None
if (out / "train_lora.out").is_file():
    lines = [l for l in (out / "train_lora.out").read_text().splitlines() if l.startswith("{")]
    train = json.loads(lines[-1]) if lines else None
summary = {"mode": mode, "seconds": seconds, "render": render, "render_rc": int(render_rc),
           "train_lora": train, "train_lora_rc": train_rc if train_rc == "skipped" else int(train_rc),
           "animate": (out / "animate.out").read_text() if (out / "animate.out").is_file() else None}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
print(f"gpu_check: {mode}, {seconds} s; render rc {render_rc}, train_lora rc {train_rc}; {out / 'gpu_check.json'}")
PYEOF
[ "$render_rc" = 0 ] && { [ "$train_rc" = 0 ] || [ "$train_rc" = skipped ]; }
