#!/usr/bin/env python3
"""Pack what the GPU check needs into data/gpu/ (git-ignored), small enough to carry.

The GPU machine has no network and no Hub cache, and a carried tree is limited to 64 MiB, so:
all-MiniLM-L6-v2's weights go as float16 (45 MB; `gpu/run.sh` widens them back to float32
there, so the Rust run and the PyTorch reference see identical weights), and the IMDb splits
go as the SMALL_RUN-sized subsets the reference script would draw (seeded permutation,
first 4,000 train / 2,000 test rows), so "all rows of the file" is the same set for both.

Usage (repository root): /work/venv-fx/bin/python scripts/gpu/prepare_carry.py --shared ../shared
"""
import argparse, json, shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from safetensors.numpy import load_file, save_file

ap = argparse.ArgumentParser()
ap.add_argument("--shared", default="../shared")
ap.add_argument("--out", default="data/gpu")
ap.add_argument("--train-n", type=int, default=4000)
ap.add_argument("--test-n", type=int, default=2000)
ap.add_argument("--seed", type=int, default=42)
args = ap.parse_args()

hub = Path(args.shared) / "hub"
model_src = hub / "sentence-transformers/all-MiniLM-L6-v2/resolve/main"
out = Path(args.out)
(out / "minilm").mkdir(parents=True, exist_ok=True)
for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]:
    shutil.copy(model_src / f, out / "minilm" / f)
tensors = load_file(str(model_src / "model.safetensors"))
half = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in tensors.items()}
save_file(half, str(out / "minilm" / "model.f16.safetensors"), metadata={"format": "pt"})

data_src = hub / "datasets/stanfordnlp/imdb/resolve/main/plain_text"
(out / "imdb/plain_text").mkdir(parents=True, exist_ok=True)
for split, n in [("train", args.train_n), ("test", args.test_n)]:
    name = f"{split}-00000-of-00001.parquet"
    table = pq.read_table(data_src / name)
    idx = np.random.default_rng(args.seed).permutation(table.num_rows)[:n]
    pq.write_table(table.take(np.sort(idx)), out / "imdb/plain_text" / name, compression="zstd")
print(json.dumps({p.name: p.stat().st_size for p in out.rglob("*") if p.is_file()}, indent=1))
