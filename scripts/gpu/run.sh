#!/usr/bin/env bash
# The GPU check, run on the lent GPU machine from the repository root with the CUDA binary
# and data/gpu/ carried (see docs/GPU.md). Writes everything under $OUT.
set -uo pipefail
OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
BIN="${BIN:-target/dist/imdb-lora}"
EPOCHS="${EPOCHS:-1}"
exec > >(tee "$OUT/run.log") 2>&1
set -x
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
if [ -f "$BIN.xz" ] && [ ! -f "$BIN" ]; then
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$BIN.xz" "$BIN"
fi
chmod +x "$BIN"
# burn-cuda loads NVRTC at run time; fall back to the copy PyTorch's wheels ship.
ldconfig -p | grep -E "libnvrtc|libcuda\.so" | head -5
if ! ldconfig -p | grep -q libnvrtc; then
    for d in $(python3 -c "import glob, site; print(' '.join(glob.glob(site.getsitepackages()[0] + '/nvidia/*/lib')))"); do
        LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
    done
    export LD_LIBRARY_PATH
fi
# float16 → float32 so both runs use identical weights.
python3 - <<'PY'
from safetensors.torch import load_file, save_file
t = load_file("data/gpu/minilm/model.f16.safetensors")
save_file({k: (v.float() if v.is_floating_point() else v) for k, v in t.items()},
          "data/gpu/minilm/model.safetensors", metadata={"format": "pt"})
PY
# No --train-n/--test-n: the carried files are exactly the 4,000/2,000 subsets.
common=(--model data/gpu/minilm --data data/gpu/imdb
        --max-len 256 --seed 42)
time timeout "${RUST_TIMEOUT:-300}" "$BIN" train "${common[@]}" --epochs "$EPOCHS" --batch-size 16 \
    --checkpoint-every 0 ${RUST_ARGS:-} --out "$OUT/rust" 2> >(tee "$OUT/rust.stderr" >&2)
cp "$OUT/rust/metrics.json" "$OUT/rust_metrics.json" 2>/dev/null
"$BIN" plot --metrics "$OUT/rust/metrics.json" --out "$OUT/rust"
time "$BIN" predict --model "$OUT/rust/model" \
    "A triumph from start to finish." "I want those two hours back." > "$OUT/predict.json"
cat "$OUT/predict.json"
python3 scripts/gpu/peft_reference.py --model data/gpu/minilm --data data/gpu/imdb/plain_text \
    --train-n 4000 --test-n 2000 --max-len 256 --epochs "$EPOCHS" --device cuda > "$OUT/peft.json"
cat "$OUT/peft.json"
rm -rf "$OUT/rust/checkpoints" "$OUT/rust/model"
