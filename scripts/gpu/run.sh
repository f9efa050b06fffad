#!/usr/bin/env bash
# The GPU measurement of issues #16 and #17, one entry point: run on the lent GPU machine from the
# repository root with data/gpu/carry/ carried (scripts/gpu/prepare_carry.py; docs/GPU.md,
# "Running the GPU measurement", has the exact calls). Stages, each under its own time budget:
#   f32      ours vs PEFT alternated: ours, PEFT (TF32 off), ours, PEFT (TF32 on); 2 epochs
#   profile  ours: step timing (IMDB_LORA_STEP_TIMING) + kernels counted by CubeCL's profiling
#            log; PEFT: enqueue/sync timing + torch.profiler (kernels per step, GPU-busy share)
#   bf16     ours --precision bf16 (recorded "unsupported" if the binary lacks it) vs PEFT autocast
#   full     full IMDb 25,000/25,000, 3 epochs, bf16: ours then PEFT, wall time + accuracy
# STAGES="f32 profile bf16" is the default; "full" goes in a second call (docs/GPU.md).
# Raw outputs go to $RAW/<stage>/ and, per stage, into $OUT/<stage>.tgz; $OUT also gets run.log,
# env.json, gpu_summary.json, summary.md and profile.json (at most 8 files: what the tool returns).
# DEVICE=cpu runs the same script on the CPU (PEFT on the CPU, BIN a CPU build): the dry run.
set -uo pipefail
cd "$(dirname "$0")/../.."

export DEVICE="${DEVICE:-cuda}"
# RAW is new for every call: a warm machine keeps /tmp, and a summary must hold this call's runs only.
export OUT="${OUT:-/tmp/gpu-out}" RAW="${RAW:-/tmp/gpu-raw-$(date +%s)}"
export CARRY="${CARRY:-data/gpu/carry}" WORK="${WORK:-data/gpu/work}"
export BIN="${BIN:-$WORK/bin/imdb-lora}" PYTHON="${PYTHON:-python3}"
export STAGES="${STAGES:-f32 profile bf16}"
export TRAIN_N="${TRAIN_N:-4000}" TEST_N="${TEST_N:-2000}" EPOCHS="${EPOCHS:-2}"
export BATCH="${BATCH:-16}" MAX_LEN="${MAX_LEN:-256}" SEED="${SEED:-42}"
# Fewer runs when device time is short (docs/GPU.md: what to drop first): F32_PAIRS=1 leaves out
# the second ours/PEFT pair (PEFT with TF32), PROFILE_KERNELS=0 the kernel-counting runs.
export F32_PAIRS="${F32_PAIRS:-2}" BF16_REPEAT="${BF16_REPEAT:-1}" PROFILE_KERNELS="${PROFILE_KERNELS:-1}"
export PROFILE_STEPS="${PROFILE_STEPS:-30}" PROFILE_WARMUP="${PROFILE_WARMUP:-10}" PROFILE_TEST_N="${PROFILE_TEST_N:-64}"
export FULL_TRAIN_N="${FULL_TRAIN_N:-0}" FULL_TEST_N="${FULL_TEST_N:-0}" FULL_EPOCHS="${FULL_EPOCHS:-3}"
export FULL_PRECISION="${FULL_PRECISION:-bf16}" FULL_FALLBACK_F32="${FULL_FALLBACK_F32:-1}"
# Seconds. The stages share TOTAL_BUDGET (keep it under the call's timeout_s); each is also capped.
export TOTAL_BUDGET="${TOTAL_BUDGET:-560}"
export BUDGET_F32="${BUDGET_F32:-240}" BUDGET_PROFILE="${BUDGET_PROFILE:-150}" BUDGET_BF16="${BUDGET_BF16:-150}"
export BUDGET_FULL="${BUDGET_FULL:-480}"
export OURS_TIMEOUT="${OURS_TIMEOUT:-150}" PEFT_TIMEOUT="${PEFT_TIMEOUT:-120}"
export FULL_OURS_TIMEOUT="${FULL_OURS_TIMEOUT:-300}" FULL_PEFT_TIMEOUT="${FULL_PEFT_TIMEOUT:-240}"
# The recipe both sides share (PEFT's: constant lr, no warm-up, no clipping); OURS_EXTRA adds flags
# (e.g. --pad-multiple 64).
export RECIPE="${RECIPE:---lr-schedule constant --warmup-ratio 0 --max-grad-norm 0 --checkpoint-every 0}"
export OURS_EXTRA="${OURS_EXTRA:-}"
# How our binary is made to log every kernel it launches with its GPU time (CubeCL 0.10: the
# profiling logger at level basic; CUBECL_DEBUG_LOG=<file> also logs each compilation; checked on
# wgpu/lavapipe). @LOG@ is replaced by the run's log file.
export KERNEL_LOG_ENV="${KERNEL_LOG_ENV:-CUBECL_DEBUG_LOG=@LOG@ CUBECL_DEBUG_OPTION=profile}"

now() { date +%s.%N; }
# Seconds between two `now` values, or since T0 with one (no bc on every image).
since() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }

# Writes a small JSON file from key=value pairs (values that parse as JSON stay JSON).
json_kv() {
    local file=$1; shift
    "$PYTHON" - "$file" "$@" <<'PY'
import json, sys
out = {}
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
json.dump(out, open(sys.argv[1], "w"), indent=1)
PY
}

# GPU memory: nvidia-smi's used memory polled every 100 ms while a run lasts (the only view of our
# process's memory: Burn has no max_memory_allocated); the idle value before it is recorded too.
mem_start() {
    MEMPID=""; MEM_IDLE=null
    if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
        MEM_IDLE=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$1/gpu_mem.txt" 2>/dev/null &
        MEMPID=$!
    fi
}
mem_stop() { [ -n "$MEMPID" ] && { kill "$MEMPID" 2>/dev/null; wait "$MEMPID" 2>/dev/null; }; true; }

supports_precision() { "$BIN" train --help 2>/dev/null | grep -q -- '--precision'; }

# ours NAME PRECISION TIMEOUT DATA [extra train args...]: one `imdb-lora train`, into $RAW/$STAGE/NAME.
ours() {
    local name=$1 prec=$2 to=$3 data=$4; shift 4
    local d="$RAW/$STAGE/$name"; mkdir -p "$d"
    local pflag=()
    if supports_precision; then
        pflag=(--precision "$prec")
    elif [ "$prec" != f32 ]; then
        echo "== $name: the binary has no --precision flag: $prec unsupported"
        json_kv "$d/run.json" name="$name" side=ours precision="$prec" status=unsupported
        return 0
    fi
    local cmd=("$BIN" --log-format json train --model "$WORK/minilm" --data "$data"
        --max-len "$MAX_LEN" --seed "$SEED" --batch-size "$BATCH" "${pflag[@]}" $RECIPE $OURS_EXTRA "$@"
        --out "$d/run")
    echo "== $name: ${cmd[*]}"
    mem_start "$d"; local t0; t0=$(now)
    timeout --foreground --kill-after=5 "$to" "${cmd[@]}" 2> "$d/stderr.jsonl"; local rc=$?
    local t1; t1=$(now); mem_stop
    cp "$d/run/metrics.json" "$d/metrics.json" 2>/dev/null
    rm -rf "$d/run/checkpoints" "$d/run/model"
    json_kv "$d/run.json" name="$name" side=ours precision="$prec" rc="$rc" \
        wall_s="$(since "$t0" "$t1")" mem_idle_mib="$MEM_IDLE" cmd="${cmd[*]}" \
        status="$([ "$rc" = 0 ] && echo ok || echo failed)"
    echo "== $name: rc $rc, $(since "$t0" "$t1") s"; tail -n 3 "$d/stderr.jsonl" | cut -c1-400
}

# peft NAME PRECISION TIMEOUT DATA TRAIN_N TEST_N EPOCHS [extra args...]: one peft_reference.py run.
peft() {
    local name=$1 prec=$2 to=$3 data=$4 trn=$5 ten=$6 ep=$7; shift 7
    local d="$RAW/$STAGE/$name"; mkdir -p "$d"
    local cmd=("$PYTHON" scripts/gpu/peft_reference.py --model "$WORK/minilm" --data "$data/plain_text"
        --train-n "$trn" --test-n "$ten" --max-len "$MAX_LEN" --epochs "$ep" --batch "$BATCH"
        --seed "$SEED" --device "$DEVICE" --precision "$prec" "$@")
    echo "== $name: ${cmd[*]}"
    mem_start "$d"; local t0; t0=$(now)
    timeout --foreground --kill-after=5 "$to" "${cmd[@]}" > "$d/peft.json" 2> "$d/stderr.txt"; local rc=$?
    local t1; t1=$(now); mem_stop
    json_kv "$d/run.json" name="$name" side=peft precision="$prec" rc="$rc" \
        wall_s="$(since "$t0" "$t1")" mem_idle_mib="$MEM_IDLE" cmd="${cmd[*]}" \
        status="$([ "$rc" = 0 ] && echo ok || echo failed)"
    echo "== $name: rc $rc, $(since "$t0" "$t1") s"; [ "$rc" = 0 ] || tail -n 5 "$d/stderr.txt"
}

# The subset sizes: every row of the carried subset files (the binary takes them whole).
stage_f32() {
    ours ours_f32_1 f32 "$OURS_TIMEOUT" "$WORK/imdb" --epochs "$EPOCHS"
    peft peft_f32 f32 "$PEFT_TIMEOUT" "$WORK/imdb" "$TRAIN_N" "$TEST_N" "$EPOCHS"
    [ "$F32_PAIRS" -ge 2 ] || return 0
    ours ours_f32_2 f32 "$OURS_TIMEOUT" "$WORK/imdb" --epochs "$EPOCHS"
    peft peft_tf32 tf32 "$PEFT_TIMEOUT" "$WORK/imdb" "$TRAIN_N" "$TEST_N" "$EPOCHS"
}

stage_bf16() {
    local i
    for i in $(seq 1 "$BF16_REPEAT"); do
        ours "ours_bf16_$i" bf16 "$OURS_TIMEOUT" "$WORK/imdb" --epochs "$EPOCHS"
        peft "peft_bf16_$i" bf16 "$PEFT_TIMEOUT" "$WORK/imdb" "$TRAIN_N" "$TEST_N" "$EPOCHS"
    done
}

# Ours: one run timed per step (the binary syncs after each step and logs step_timing), then two
# runs under CubeCL's kernel log that differ only in PROFILE_STEPS more steps: their difference is
# what those steps launched (the baseline evaluation and start-up cancel out). PEFT: the same
# steps timed, then profiled. All f32, batch $BATCH, max_len $MAX_LEN, no epoch-end evaluation.
stage_profile() {
    local total=$((PROFILE_WARMUP + PROFILE_STEPS)) a
    IMDB_LORA_STEP_TIMING=1 ours ours_timing f32 "$OURS_TIMEOUT" "$WORK/imdb" \
        --epochs 1 --test-n "$PROFILE_TEST_N" --stop-after-steps "$total"
    local counts=("count_a $PROFILE_WARMUP" "count_b $total")
    [ "$PROFILE_KERNELS" = 1 ] || counts=()
    for a in "${counts[@]}"; do
        set -- $a
        local log="$RAW/$STAGE/ours_$1/cubecl.log"; mkdir -p "$(dirname "$log")"; rm -f "$log"
        env ${KERNEL_LOG_ENV//@LOG@/$log} bash -c 'ours "$@"' _ "ours_$1" f32 "$OURS_TIMEOUT" "$WORK/imdb" \
            --epochs 1 --test-n "$PROFILE_TEST_N" --stop-after-steps "$2"
        # The log holds every compiled kernel's source: keep the per-kernel lines
        # ("| 8.17ms | FullKernel | CudaRuntime") and the number of compilations.
        if [ -f "$log" ]; then
            grep -cE '^\[(START_KERNEL_COMPILATION|Compiling kernel)' "$log" > "${log%.log}.compiled" || true
            grep -E '^\| ' "$log" > "${log%.log}.kernels" || true
            rm -f "$log"
        fi
    done
    peft peft_profile f32 "$PEFT_TIMEOUT" "$WORK/imdb" "$TRAIN_N" "$TEST_N" 1 \
        --profile-steps "$PROFILE_STEPS" --profile-warmup "$PROFILE_WARMUP"
}

stage_full() {
    local prec=$FULL_PRECISION
    if [ "$prec" != f32 ] && ! supports_precision; then
        if [ "$FULL_FALLBACK_F32" = 1 ]; then
            echo "== full: the binary has no --precision flag; ours runs in f32"; prec=f32
        else
            json_kv "$RAW/full/ours_full.unsupported.json" precision="$FULL_PRECISION" status=unsupported
            prec=""
        fi
    fi
    if [ -n "$prec" ]; then
        ours ours_full "$prec" "$FULL_OURS_TIMEOUT" "$WORK/imdb_full" --epochs "$FULL_EPOCHS"
    fi
    local n; n=$("$PYTHON" -c "import pyarrow.parquet as pq, sys; print(pq.read_metadata(sys.argv[1]).num_rows, pq.read_metadata(sys.argv[2]).num_rows)" \
        "$WORK/imdb_full/plain_text/train-00000-of-00001.parquet" "$WORK/imdb_full/plain_text/test-00000-of-00001.parquet")
    set -- $n
    peft peft_full "$FULL_PRECISION" "$FULL_PEFT_TIMEOUT" "$WORK/imdb_full" "$1" "$2" "$FULL_EPOCHS"
}

if [ "${1:-}" = --stage ]; then
    export STAGE=$2
    export -f ours peft json_kv mem_start mem_stop supports_precision now since
    "stage_$2"
    exit $?
fi

# ---- the parent: setup, then each stage in its own process under its budget ----
mkdir -p "$OUT" "$RAW"
exec > >(tee "$OUT/run.log") 2>&1
TEE_PID=$!
T0=$(now)
echo "== imdb-lora GPU measurement: STAGES='$STAGES' DEVICE=$DEVICE $(date -u +%FT%TZ)"
for s in $STAGES; do
    case $s in f32|profile|bf16|full) ;; *) echo "unknown stage '$s' (f32 profile bf16 full)"; exit 2 ;; esac
done

# burn-cuda loads NVRTC at run time; fall back to the copy PyTorch's wheels ship.
if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv
    if ! ldconfig -p | grep -q libnvrtc; then
        for d in $("$PYTHON" -c "import glob, site; print(' '.join(glob.glob(site.getsitepackages()[0] + '/nvidia/*/lib') + glob.glob(site.getsitepackages()[0] + '/nvidia/cu*/lib')))"); do
            LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
        done
        export LD_LIBRARY_PATH
    fi
fi
full_args=()
case " $STAGES " in *" full "*) full_args=(--full --full-train-n "$FULL_TRAIN_N" --full-test-n "$FULL_TEST_N") ;; esac
skip_bin=(); [ "$BIN" != "$WORK/bin/imdb-lora" ] && skip_bin=(--skip-binary)
timeout 120 "$PYTHON" scripts/gpu/unpack.py --carry "$CARRY" --work "$WORK" --train-n "$TRAIN_N" \
    --test-n "$TEST_N" --seed "$SEED" "${full_args[@]}" "${skip_bin[@]}" | tee "$RAW/unpack.json" \
    || { echo "unpack failed"; exit 1; }
"$BIN" --version || { echo "the binary $BIN does not run"; exit 1; }

gpu_name=cpu; driver=null
if [ "$DEVICE" = cuda ]; then
    gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
fi
commit=$(git rev-parse HEAD 2>/dev/null || echo null)
json_kv "$OUT/env.json" date="$(date -u +%FT%TZ)" device="$DEVICE" gpu="$gpu_name" driver="$driver" \
    tree_commit="$commit" carry_manifest="$(cat "$CARRY/manifest.json")" \
    binary_sha256="$(sha256sum "$BIN" | cut -d' ' -f1)" binary_version="$("$BIN" --version)" \
    binary_has_precision="$(supports_precision && echo true || echo false)" \
    torch="$("$PYTHON" -c 'import torch, transformers, peft; print(torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "peft", peft.__version__)' 2>/dev/null)" \
    stages="$STAGES" train_n="$TRAIN_N" test_n="$TEST_N" epochs="$EPOCHS" batch="$BATCH" max_len="$MAX_LEN" \
    seed="$SEED" recipe="$RECIPE" ours_extra="$OURS_EXTRA" profile_steps="$PROFILE_STEPS" \
    profile_warmup="$PROFILE_WARMUP" full_epochs="$FULL_EPOCHS" full_precision="$FULL_PRECISION"
cp "$OUT/env.json" "$RAW/env.json"
echo "== setup took $(since "$T0") s"

for s in $STAGES; do
    var="BUDGET_${s^^}"; budget=${!var}
    left=$(awk -v t="$TOTAL_BUDGET" -v e="$(since "$T0")" 'BEGIN { printf "%d", t - e - 15 }')
    [ "$left" -lt "$budget" ] && budget=$left
    if [ "$budget" -lt 30 ]; then
        echo "== stage $s skipped: ${budget}s left of TOTAL_BUDGET=$TOTAL_BUDGET"
        mkdir -p "$RAW/$s"; json_kv "$RAW/$s/skipped.json" stage="$s" reason="out of time"
    else
        echo "== stage $s (budget ${budget}s)"; ts=$(now); rm -rf "${RAW:?}/$s"; mkdir -p "$RAW/$s"
        timeout --kill-after=10 "$budget" "$0" --stage "$s"; rc=$?
        echo "== stage $s: rc $rc, $(since "$ts") s"
    fi
    tar czf "$OUT/$s.tgz" -C "$RAW" "$s" env.json
done

"$PYTHON" scripts/gpu/summarize.py --raw "$RAW" --out "$OUT/gpu_summary.json" \
    --markdown "$OUT/summary.md" --profile "$OUT/profile.json" && cat "$OUT/summary.md"
echo "== total $(since "$T0") s"
# Let tee write the last lines before the tool collects $OUT.
exec >/dev/null 2>&1; wait "$TEE_PID" 2>/dev/null || sleep 1
