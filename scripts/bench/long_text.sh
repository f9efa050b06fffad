#!/usr/bin/env bash
# The --long-text measurement of docs/RESULTS.md: IMDb SMALL_RUN (4,000 / 2,000 reviews) with
# all-MiniLM-L6-v2, the same seed and recipe, for each way of giving the model long reviews:
# truncate 128, truncate 256, head-tail 256, window 128 / stride 64, window 256 / stride 128.
# Prints accuracy, F1, training and evaluation time and the sequences (windows) per run.
#
#   scripts/bench/long_text.sh BIN OUT [extra train options...]
#
# BIN: the imdb-lora binary; OUT: a directory for the runs. MODEL and DATA name the model and
# the IMDb dataset (defaults: the shared copies). Runs one after the other: time them alone.
set -euo pipefail
bin=$1
out=$2
shift 2
model=${MODEL:-../shared/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main}
data=${DATA:-../shared/hub/datasets/stanfordnlp/imdb/resolve/main}
mkdir -p "$out"
run() {
    local name=$1
    shift
    "$bin" train --model "$model" --data "$data" --small --seed 42 --checkpoint-every 0 \
        --no-report "$@" --out "$out/$name" 2> "$out/$name.log"
}
run truncate-128 --max-len 128 "$@"
run truncate-256 --max-len 256 "$@"
run head-tail-256 --max-len 256 --long-text head-tail "$@"
run window-128-64 --max-len 128 --long-text window --stride 64 "$@"
run window-256-128 --max-len 256 --long-text window --stride 128 "$@"
python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
print("| run | accuracy | F1 | training s | training sequences/s | evaluation s (test) | train sequences |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in ("truncate-128", "truncate-256", "head-tail-256", "window-128-64", "window-256-128"):
    m = json.load(open(f"{out}/{name}/metrics.json"))
    last = m["epochs"][-1]
    log = open(f"{out}/{name}.log").read()
    seqs = re.search(r"train: 4000 examples \([^)]*\)(?: in (\d+) windows)?", log)
    n = seqs.group(1) if seqs and seqs.group(1) else "4000"
    train_s = sum(e["train_seconds"] for e in m["epochs"])
    print(f"| {name} | {last['eval']['accuracy']:.4f} | {last['eval']['f1']:.4f} | {train_s:.0f} | "
          f"{m['train_samples_per_s']:.1f} | {last['eval']['seconds']:.0f} | {n} |")
PY
