#!/usr/bin/env bash
# The --class-weights measurement of docs/RESULTS.md: AG News with one class (Business, "3")
# cut to a tenth of its rows (every tenth in file order), then the same MiniLM run with and
# without --class-weights auto; macro-F1 on the (equally imbalanced) stratified test split.
#
#   scripts/bench/class_weights.sh BIN OUT [extra train options...]
#
# BIN: the imdb-lora binary; OUT: a directory for the slice and both runs. AG_NEWS and MODEL
# name the data directory and the model (defaults: the shared copies); EPOCHS the epochs (2).
set -euo pipefail
bin=$1
out=$2
shift 2
src=${AG_NEWS:-../shared/data/ag_news}
model=${MODEL:-../shared/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main}
mkdir -p "$out/data"
# The first field is the quoted class index; no AG News field holds a newline.
awk -F, '$1 != "\"3\"" || (n++ % 10 == 0)' "$src/test.csv" > "$out/data/ag_news_business_tenth.csv"
cp "$src/classes.txt" "$out/data/"
for weights in none auto; do
    extra=()
    if [ "$weights" = auto ]; then extra=(--class-weights auto); fi
    "$bin" train --model "$model" --data "$out/data/ag_news_business_tenth.csv" \
        --text-column 2,3 --label-column 1 --test-fraction 0.2 --max-len 128 --epochs "${EPOCHS:-2}" \
        --seed 42 --no-report "${extra[@]}" "$@" --out "$out/$weights"
done
python3 - "$out" <<'PY'
import json, sys
for w in ("none", "auto"):
    m = json.load(open(f"{sys.argv[1]}/{w}/metrics.json"))
    last = m["classes"]["epochs"][-1]
    per = {c["name"]: round(c["f1"], 4) for c in last["per_class"]}
    print(w, "macro-F1", round(last["macro_f1"], 4), "accuracy", round(m["epochs"][-1]["eval"]["accuracy"], 4),
          "per-class F1", per, "weights", m["config"].get("class_weights"),
          "train s", round(sum(e["train_seconds"] for e in m["epochs"]), 1))
PY
