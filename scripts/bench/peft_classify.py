"""The PyTorch + PEFT reference for any text-classification data: N labels, the exact split of a run.

`../shared/peer/peft_imdb.py` is the reference for IMDb (two labels, parquet, its own shuffles).
This script extends it to the data `imdb-lora train` reads from a user's files, on the SAME rows:
it reads the `split.json` that `imdb-lora train` writes into its run directory (the 0-based data
rows of the train and test parts, and the class names) and the same CSV file, so both sides train
and test on identical examples. The recipe is the seed's: LoRA (r=8, alpha=16, dropout=0.1) on
query/value, frozen backbone, trainable adapters + classifier head, AdamW lr 2e-4, batch 16,
linear decay with 6 % warm-up like `imdb-lora train`'s defaults (transformers' Trainer schedule),
gradient norm clipped at 1.0, dynamic padding, max_len 256.

Prints one JSON line: baseline and per-epoch accuracy, macro-F1, weighted-F1, loss.

Example (AG News, title + description, classes 1..4 in classes.txt):
    python scripts/bench/peft_classify.py \
        --model ../shared/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main \
        --csv ../shared/data/ag_news/test.csv --text-columns 2,3 --label-column 1 \
        --split outputs/ag_news/split.json --epochs 3
"""
import argparse, csv, json, math, resource, time

import numpy as np
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup


def read_csv(path, text_cols, label_col, header):
    """Rows as (text, raw label), data rows numbered from 0 as `imdb-lora` numbers them."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if header:
        names = rows[0]
        rows = rows[1:]
        idx = lambda c: names.index(c) if not c.isdigit() else int(c) - 1
    else:
        idx = lambda c: int(c) - 1
    t = [idx(c) for c in text_cols]
    l = idx(label_col)
    return [(" ".join(r[i] for i in t), r[l]) for r in rows]


def batches(enc, labels, bs, order):
    for s in range(0, len(order), bs):
        ix = order[s:s + bs]
        ids = [enc["input_ids"][i] for i in ix]
        L = max(map(len, ids))
        a = np.zeros((len(ix), L), dtype=np.int64); m = np.zeros_like(a)
        for r, x in enumerate(ids):
            a[r, :len(x)] = x; m[r, :len(x)] = 1
        yield torch.from_numpy(a), torch.from_numpy(m), torch.from_numpy(labels[ix])


def f1s(p, y, n):
    """Macro- and weighted-F1 with scikit-learn's zero_division=0."""
    f, support = [], []
    for c in range(n):
        tp = int(((p == c) & (y == c)).sum()); pp = int((p == c).sum()); ap = int((y == c).sum())
        prec = tp / pp if pp else 0.0; rec = tp / ap if ap else 0.0
        f.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0); support.append(ap)
    return sum(f) / n, sum(fi * s for fi, s in zip(f, support)) / max(sum(support), 1)


def evaluate(model, enc, labels, n):
    model.eval(); preds = []; loss = 0.0; t0 = time.perf_counter()
    with torch.inference_mode():
        for ids, mask, y in batches(enc, labels, args.eval_batch, np.arange(len(labels))):
            out = model(input_ids=ids, attention_mask=mask, labels=y)
            preds.append(out.logits.argmax(-1).numpy()); loss += out.loss.item() * len(y)
    dt = time.perf_counter() - t0
    p = np.concatenate(preds); macro, weighted = f1s(p, labels, n)
    return {"accuracy": float((p == labels).mean()), "macro_f1": macro, "weighted_f1": weighted,
            "loss": loss / len(labels), "seconds": dt, "samples_per_s": len(labels) / dt}


ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True); ap.add_argument("--csv", required=True)
ap.add_argument("--text-columns", default="text"); ap.add_argument("--label-column", default="label")
ap.add_argument("--header", action="store_true", help="the CSV's first row names the columns")
ap.add_argument("--split", required=True, help="split.json from the imdb-lora run directory")
ap.add_argument("--max-len", type=int, default=256); ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--batch", type=int, default=16); ap.add_argument("--eval-batch", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-4); ap.add_argument("--warmup-ratio", type=float, default=0.06)
ap.add_argument("--seed", type=int, default=42); ap.add_argument("--threads", type=int, default=0)
args = ap.parse_args()
if args.threads: torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)

split = json.load(open(args.split))
classes = split["classes"]
rows = read_csv(args.csv, args.text_columns.split(","), args.label_column, args.header)
raw = split.get("raw_labels")  # raw label value per class index, as imdb-lora mapped them
index = {r: i for i, r in enumerate(raw)} if raw else {c: i for i, c in enumerate(classes)}
def part(key):
    ix = split[key]
    return [rows[i][0] for i in ix], np.array([index[rows[i][1]] for i in ix])
xtr, ytr = part("train_rows"); xte, yte = part("test_rows")
n = len(classes)

tok = AutoTokenizer.from_pretrained(args.model)
etr = tok(xtr, truncation=True, max_length=args.max_len); ete = tok(xte, truncation=True, max_length=args.max_len)
base = AutoModelForSequenceClassification.from_pretrained(
    args.model, num_labels=n, id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})
model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                                        target_modules=["query", "value"]))
out = {"peer": "transformers+peft", "torch": torch.__version__, "threads": torch.get_num_threads(),
       "classes": classes, "train_n": len(ytr), "test_n": len(yte), "args": vars(args),
       "baseline": evaluate(model, ete, yte, n), "epochs": []}
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
steps = args.epochs * math.ceil(len(ytr) / args.batch)
sched = get_linear_schedule_with_warmup(opt, math.ceil(args.warmup_ratio * steps), steps)
rng = np.random.default_rng(args.seed)
for ep in range(args.epochs):
    model.train(); t0 = time.perf_counter(); seen = 0; loss_sum = 0.0
    for ids, mask, y in batches(etr, ytr, args.batch, rng.permutation(len(ytr))):
        loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
        loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step(); opt.zero_grad(); seen += len(y); loss_sum += loss.item() * len(y)
    dt = time.perf_counter() - t0
    out["epochs"].append({"epoch": ep + 1, "train_loss": loss_sum / seen, "train_seconds": dt,
                          "train_samples_per_s": seen / dt, "eval": evaluate(model, ete, yte, n)})
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
