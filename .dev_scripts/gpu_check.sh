#!/usr/bin/env bash
# The project's checks on a CUDA machine, in about 10 minutes on one GPU (none of them runs in
# CI, which has no GPU). Needs the project's environment on that machine (tools/setup_env.sh,
# or PYTHON naming an interpreter that has the stack). Writes its logs and figures to
# ${OUT:-work_dirs/gpu_check}:
#   1. tests.txt: the device-parametrised tests (mixed precision, random states) on CUDA;
#   2. benchmark_{fp32,fp16,bf16}.json / .txt: tools/benchmark.py's pairs on CUDA, without and
#      with --amp (its KD, DIST and block-wise variants and their floors), peak memory included;
#   3. resume_amp.txt: the digits demo's KD config trained with --amp for 2 epochs, and again
#      interrupted after 1 and resumed, with the largest loss difference after the resume;
#   4. ddp_nccl.txt (machines with 2 or more GPUs): the same config on 2 GPUs (NCCL).
# Usage: bash .dev_scripts/gpu_check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${OUT:-$ROOT/work_dirs/gpu_check}"
WORK="$ROOT/work_dirs/gpu_check_runs"
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'PY' | tee "$OUT/device.txt"
import torch
assert torch.cuda.is_available(), 'gpu_check.sh needs a CUDA device'
print(torch.__version__, torch.version.cuda, torch.cuda.device_count(), 'x',
      torch.cuda.get_device_name(), 'bf16:', torch.cuda.is_bf16_supported())
PY

echo '[gpu_check] 1/4 device-parametrised tests'
"$PY" -m pytest -q -rs tests/test_models/test_mixed_precision.py \
  tests/test_tools/test_random_state_hook.py 2>&1 | tee "$OUT/tests.txt"

echo '[gpu_check] 2/4 benchmark on CUDA'
VARIANTS=(kd dist blockwise blockwise_late kd_bf16)
for amp in fp32 fp16 bf16; do
  amp_args=()
  [[ "$amp" == fp32 ]] || amp_args=(--amp "$amp")
  "$PY" tools/benchmark.py "${amp_args[@]}" --rounds 2 --iters 4 --variants "${VARIANTS[@]}" \
    --out "$OUT/benchmark_$amp.json" 2>&1 | tee "$OUT/benchmark_$amp.txt"
done

echo '[gpu_check] 3/4 the digits KD config with --amp, interrupted and resumed'
DATA="$WORK/digits"
TEACHER="$WORK/teacher.pth"
"$PY" - "$DATA" "$TEACHER" <<'PY'
import sys
import torch
from mmkd_plugins.testing import write_digits_folder
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
write_digits_folder(sys.argv[1], {'test': 100, 'student_train': 50}, image_size=16)
torch.manual_seed(0)
teacher = build_model_from_config(
    load_model_config('configs/demo/teacher_resnet18w32_digits.py', 'teacher'))
torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, sys.argv[2])
PY
CONFIG=configs/demo/kd_resnet18w32_resnet18w8_digits.py
options() {
  echo --cfg-options model.teacher.checkpoint="$TEACHER" randomness.seed=0 \
    train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA" \
    test_dataloader.dataset.data_root="$DATA" train_cfg.max_epochs="$1" train_cfg.val_interval=1 \
    default_hooks.checkpoint.interval=1 default_hooks.logger.interval=1 \
    model.student.backbone.drop_path_rate=0.2
}
rm -rf "$WORK/straight" "$WORK/resumed"
# shellcheck disable=SC2046
{
  "$PY" tools/train.py "$CONFIG" --amp --work-dir "$WORK/straight" $(options 2)
  "$PY" tools/train.py "$CONFIG" --amp --work-dir "$WORK/resumed" $(options 1)
  "$PY" tools/train.py "$CONFIG" --amp --work-dir "$WORK/resumed" --resume $(options 2)
} > "$WORK/train.log" 2>&1 || { tail -50 "$WORK/train.log"; exit 1; }
"$PY" - "$WORK/straight" "$WORK/resumed" <<'PY' | tee "$OUT/resume_amp.txt"
import glob, json, sys
def losses(work_dir):
    path = sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json'))[-1]
    lines = [json.loads(line) for line in open(path)]
    return {line['step']: line['loss'] for line in lines if 'distill.loss_kd' in line}
straight, resumed = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(resumed)
worst = max(abs(resumed[s] - straight[s]) / abs(straight[s]) for s in steps)
print(f'steps after the resume: {steps}; largest relative loss difference: {worst:.3g}')
print('straight:', [round(straight[s], 6) for s in steps])
print('resumed: ', [round(resumed[s], 6) for s in steps])
PY

echo '[gpu_check] 4/4 NCCL DDP'
GPUS="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
if (( GPUS >= 2 )); then
  # shellcheck disable=SC2046
  PYTHON="$PY" bash tools/dist_train.sh "$CONFIG" 2 --work-dir "$WORK/ddp" $(options 2) \
    2>&1 | tail -20 | tee "$OUT/ddp_nccl.txt"
else
  echo "one GPU: NCCL DDP not run" | tee "$OUT/ddp_nccl.txt"
fi
echo "[gpu_check] done: $OUT"
