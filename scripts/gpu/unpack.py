#!/usr/bin/env python3
"""Rebuild on the GPU machine what scripts/gpu/prepare_carry.py packed (stdlib, numpy, pyarrow,
safetensors: all on the machine's image).

data/gpu/carry/ -> data/gpu/work/:
  bin/imdb-lora                         the binary (skipped when --binary names another one)
  minilm/                               config, tokenizer, model.safetensors widened to float32
  imdb/plain_text/{train,test}-00000-of-00001.parquet       the --train-n / --test-n subsets
  imdb_full/plain_text/{train,test}-00000-of-00001.parquet  with --full: --full-train-n / --full-test-n rows

Subsets are the rows the reference script's seeded permutation draws (first n of
default_rng(seed).permutation(rows), in file order), so the binary (given the files whole) and
peft_reference.py (given --train-n n on an n-row file: a permutation of the same rows) train and
test on identical reviews. Idempotent: what is already there is kept. Prints one JSON line.
"""
import argparse, hashlib, json, lzma, os, sys, tarfile, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("--carry", default="data/gpu/carry")
ap.add_argument("--work", default="data/gpu/work")
ap.add_argument("--train-n", type=int, default=4000)
ap.add_argument("--test-n", type=int, default=2000)
ap.add_argument("--full", action="store_true", help="also write the full splits (imdb_full/)")
ap.add_argument("--full-train-n", type=int, default=0, help="0: every row")
ap.add_argument("--full-test-n", type=int, default=0, help="0: every row")
ap.add_argument("--seed", type=int, default=None, help="default: the manifest's")
ap.add_argument("--skip-binary", action="store_true")
args = ap.parse_args()
t0 = time.time()
carry, work = Path(args.carry), Path(args.work)
manifest = json.loads((carry / "manifest.json").read_text())
args.seed = manifest.get("seed", 42) if args.seed is None else args.seed
report = {"carry_commit": manifest.get("commit"), "carry_dirty": manifest.get("dirty")}


def fail(msg):
    sys.exit(f"unpack.py: {msg}")


# The binary.
exe = work / "bin/imdb-lora"
if not args.skip_binary and not exe.exists():
    if not (carry / "imdb-lora.xz").exists():
        fail(f"{carry}/imdb-lora.xz is missing (prepare_carry.py --binary ...)")
    exe.parent.mkdir(parents=True, exist_ok=True)
    b = lzma.decompress((carry / "imdb-lora.xz").read_bytes())
    want = manifest.get("binary", {}).get("sha256")
    if want and hashlib.sha256(b).hexdigest() != want:
        fail("imdb-lora.xz does not match the manifest's sha256")
    tmp = exe.with_suffix(".tmp"); tmp.write_bytes(b); os.chmod(tmp, 0o755); tmp.rename(exe)
report["binary"] = str(exe) if exe.exists() else None

# The model: header, then the float16 bytes as two planes (low, high); widened to float32.
mdir = work / "minilm"
if not (mdir / "model.safetensors").exists():
    from safetensors.numpy import load, save_file
    mdir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(carry / "minilm.tar.xz") as t:
        for m in t.getmembers():
            if m.isfile() and "/" not in m.name:
                (mdir / m.name).write_bytes(t.extractfile(m).read())
    packed = lzma.decompress((carry / "minilm.f16s.xz").read_bytes())
    hlen = int.from_bytes(packed[:8], "little")
    planes = np.frombuffer(packed[8 + hlen:], dtype=np.uint8)
    body = np.empty_like(planes)
    half = planes.size // 2
    body[0::2], body[1::2] = planes[:half], planes[half:]
    raw = packed[:8 + hlen] + body.tobytes()
    want = manifest.get("model_f16_safetensors_sha256")
    if want and hashlib.sha256(raw).hexdigest() != want:
        fail("minilm.f16s.xz does not rebuild the float16 model the manifest names")
    tensors = {k: v.astype(np.float32) for k, v in load(raw).items()}
    save_file(tensors, str(mdir / "model.safetensors.tmp"), metadata={"format": "pt"})
    (mdir / "model.safetensors.tmp").rename(mdir / "model.safetensors")
report["model"] = str(mdir)

# The data.
splits = {}


def rows(split):
    """{row: (label, text)} of the carried split, rows numbered as in the original file."""
    if split not in splits:
        lines = lzma.decompress((carry / f"imdb_{split}.jsonl.xz").read_bytes()).decode().split("\n")
        # split("\n"), not splitlines(): reviews hold U+0085 and U+2028, which JSON leaves as is.
        splits[split] = {r: (y, x) for r, y, x in map(json.loads, filter(None, lines))}
    return splits[split]


def write(folder, split, n):
    path = work / folder / "plain_text" / f"{split}-00000-of-00001.parquet"
    total = manifest[f"{split}_rows"]
    if path.exists() and pq.read_metadata(path).num_rows == (n or total):
        return n or total
    have = rows(split)
    if n > total:
        fail(f"{n} {split} rows asked for, the split has {total}")
    # The reference script's draw over the original file's rows (what prepare_carry --rows subset kept).
    idx = np.sort(np.random.default_rng(args.seed).permutation(total)[:n]) if n else range(total)
    missing = [int(i) for i in idx if int(i) not in have]
    if missing:
        fail(f"{len(missing)} of the {split} rows asked for were not carried (prepare_carry --rows full?)")
    labels = [have[int(i)][0] for i in idx]; texts = [have[int(i)][1] for i in idx]
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"text": pa.array(texts, pa.string()), "label": pa.array(labels, pa.int64())})
    pq.write_table(table, str(path) + ".tmp", compression="zstd")
    os.rename(str(path) + ".tmp", path)
    return len(labels)


report["subset"] = {"train": write("imdb", "train", args.train_n), "test": write("imdb", "test", args.test_n)}
if args.full:
    report["full"] = {"train": write("imdb_full", "train", args.full_train_n),
                      "test": write("imdb_full", "test", args.full_test_n)}
report["seconds"] = round(time.time() - t0, 2)
print(json.dumps(report))
