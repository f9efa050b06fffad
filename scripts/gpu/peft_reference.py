#!/usr/bin/env python3
"""The PyTorch + PEFT reference run on any torch device (the shared peer script is CPU-only).

Same recipe as ../shared/peer/peft_imdb.py: seeded permutation subsets, tokenizer truncation
at --max-len, dynamic padding, LoRA r=8/alpha=16/dropout=0.1 on query+value, AdamW lr 2e-4
(no schedule), batch 16, eval batch 64. Prints one JSON line with baseline and per-epoch
accuracy/F1 and samples/s (CUDA-synchronised timings).
"""
import argparse, json, time

import numpy as np
import pyarrow.parquet as pq
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True); ap.add_argument("--data", required=True)
ap.add_argument("--train-n", type=int, default=4000); ap.add_argument("--test-n", type=int, default=2000)
ap.add_argument("--max-len", type=int, default=256); ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--batch", type=int, default=16); ap.add_argument("--eval-batch", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-4); ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--device", default="cuda")
args = ap.parse_args()
dev = torch.device(args.device)
torch.manual_seed(args.seed)


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def load(path, n):
    t = pq.read_table(path).to_pydict()
    idx = np.random.default_rng(args.seed).permutation(len(t["label"]))[:n]
    return [t["text"][i] for i in idx], np.array([t["label"][i] for i in idx])


def batches(enc, labels, bs, order):
    for s in range(0, len(order), bs):
        ix = order[s:s + bs]
        ids = [enc["input_ids"][i] for i in ix]
        L = max(map(len, ids))
        a = np.zeros((len(ix), L), dtype=np.int64); m = np.zeros_like(a)
        for r, x in enumerate(ids):
            a[r, :len(x)] = x; m[r, :len(x)] = 1
        yield torch.from_numpy(a).to(dev), torch.from_numpy(m).to(dev), torch.from_numpy(labels[ix]).to(dev)


def evaluate(model, enc, labels):
    model.eval(); preds = []; sync(); t0 = time.perf_counter()
    with torch.inference_mode():
        for ids, mask, _ in batches(enc, labels, args.eval_batch, np.arange(len(labels))):
            preds.append(model(input_ids=ids, attention_mask=mask).logits.argmax(-1).cpu().numpy())
    sync(); dt = time.perf_counter() - t0
    p = np.concatenate(preds); tp = int(((p == 1) & (labels == 1)).sum())
    prec = tp / max(int((p == 1).sum()), 1); rec = tp / max(int((labels == 1).sum()), 1)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"accuracy": float((p == labels).mean()), "f1": f1, "seconds": dt, "samples_per_s": len(labels) / dt}


tok = AutoTokenizer.from_pretrained(args.model)
xtr, ytr = load(f"{args.data}/train-00000-of-00001.parquet", args.train_n)
xte, yte = load(f"{args.data}/test-00000-of-00001.parquet", args.test_n)
etr = tok(xtr, truncation=True, max_length=args.max_len); ete = tok(xte, truncation=True, max_length=args.max_len)
base = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                                        target_modules=["query", "value"])).to(dev)
out = {"peer": "transformers+peft", "device": str(dev), "torch": torch.__version__,
       "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
       "args": vars(args), "baseline": evaluate(model, ete, yte), "epochs": []}
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
rng = np.random.default_rng(args.seed)
for ep in range(args.epochs):
    model.train(); sync(); t0 = time.perf_counter(); n = 0; loss_sum = 0.0
    for ids, mask, y in batches(etr, ytr, args.batch, rng.permutation(len(ytr))):
        loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
        loss.backward(); opt.step(); opt.zero_grad(); n += len(y); loss_sum += loss.item() * len(y)
    sync(); dt = time.perf_counter() - t0
    out["epochs"].append({"epoch": ep + 1, "train_loss": loss_sum / n, "train_seconds": dt,
                          "train_samples_per_s": n / dt, "eval": evaluate(model, ete, yte)})
if dev.type == "cuda":
    out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps(out))
