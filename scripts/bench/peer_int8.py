"""The PyTorch side of `cargo xtask bench --int8`: evaluation in f32 and with PyTorch's dynamic
int8 quantisation, on exactly the texts our `imdb-lora eval` reads.

The texts are a JSON Lines file {"text", "label"} (label: the model's class name) that
`imdb-lora-perf texts --labelled` wrote and `imdb-lora eval --data` reads too. Runs in the
reference's venv (torch, transformers). One subcommand, printing one JSON line on stdout:

  eval   load a model directory with AutoModelForSequenceClassification, optionally
         `torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)`
         (PyTorch's BERT recipe: every nn.Linear, weights int8, activations quantised at run
         time), and classify the texts in file order in batches of --batch, each padded to its
         longest text (as peft_imdb.py's evaluation); one untimed warm-up batch, then one timed
         pass. Prints samples/s, accuracy and the predicted classes.
"""
import argparse
import json
import time


def cmd_eval(a):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if a.threads:
        torch.set_num_threads(a.threads)
    rows = [json.loads(line) for line in open(a.texts)]
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model).eval()
    label2id = {v: int(k) for k, v in model.config.id2label.items()}
    if a.quantize == "dynamic-int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    texts = [r["text"] for r in rows]
    labels = [label2id.get(r["label"], -1) for r in rows]

    def batches():
        for s in range(0, len(texts), a.batch):
            yield tok(texts[s : s + a.batch], truncation=True, max_length=a.max_len,
                      padding=True, return_tensors="pt")

    with torch.inference_mode():
        first = next(batches())
        model(**first)  # warm-up, untimed
        preds = []
        t0 = time.perf_counter()
        for b in batches():
            preds.extend(model(**b).logits.argmax(-1).tolist())
        dt = time.perf_counter() - t0
    acc = sum(int(p == y) for p, y in zip(preds, labels)) / max(len(labels), 1)
    print(json.dumps({
        "quantize": a.quantize, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "backend": torch.backends.quantized.engine, "samples": len(texts), "seconds": dt,
        "samples_per_s": len(texts) / dt, "accuracy": acc, "predictions": preds,
    }))


ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
p = sub.add_parser("eval")
p.add_argument("--model", required=True)
p.add_argument("--texts", required=True)
p.add_argument("--max-len", type=int, default=256)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--quantize", choices=["none", "dynamic-int8"], default="none")
p.add_argument("--threads", type=int, default=0)
a = ap.parse_args()
{"eval": cmd_eval}[a.cmd](a)
