"""Run the shared reference `../shared/peer/peft_imdb.py` on any encoder family, otherwise unchanged.

`peft_imdb.py` hard-codes `LoraConfig(..., target_modules=["query", "value"])`. DistilBERT,
DeBERTa-v2 and ModernBERT have no `query`/`value` modules (their attention projections are
`q_lin`/`v_lin`, `query_proj`/`key_proj`/`value_proj` and one fused `Wqkv`), so PEFT raises there.
This wrapper reads `model_type` from `<--model>/config.json`, replaces `peft.LoraConfig` by a
function that passes the family's default LoRA targets instead, and executes the shared file
unchanged with `runpy` as `__main__` (same argv, same recipe, threads, batching, tokenisation,
timing and JSON line; `sys.argv[0]` is the shared script's path).

Targets: PEFT's own default for the model type
(`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`: `query`, `value` for bert, roberta,
xlm-roberta and electra; `query_proj`, `value_proj` for deberta-v2), else `FALLBACK` (PEFT 0.21
has no entry for camembert, distilbert and modernbert: `query`, `value`; `q_lin`, `v_lin`; and
`Wqkv`, ModernBERT's fused query/key/value projection, the same as `imdb-lora train`'s
per-family defaults, `fixtures/families` and `fixtures/modern`). Every other `LoraConfig`
argument is passed through as given.

For BERT (and RoBERTa, XLM-R, ELECTRA) the targets are `["query", "value"]`, the list the script
passes itself, so the run is exactly the shared script's: `cargo xtask bench` therefore always
starts the reference through this wrapper. Importing `peft` before the script does is no extra
work (the script imports it first thing) and happens before any of its timers start.

Usage (`cargo xtask bench` passes the shared script's path explicitly):

    python scripts/bench/peft_imdb_family.py [--peer-script PATH] <peft_imdb.py arguments...>

`--peer-script` defaults to `$IMDB_LORA_SHARED/peer/peft_imdb.py` (`IMDB_LORA_SHARED` defaulting
to `../shared` next to the repository). With `--print-targets` it prints the targets it would
use as one JSON line and exits.
"""
import json
import os
import runpy
import sys

FALLBACK = {
    "camembert": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "modernbert": ["Wqkv"],
}


def default_targets(model_type):
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    targets = PEFT_DEFAULTS.get(model_type) or FALLBACK.get(model_type)
    if not targets:
        sys.exit(f"peft_imdb_family: no default LoRA targets for model_type {model_type!r}")
    return list(targets)


def arg_value(argv, name):
    """The value of `--name VALUE` or `--name=VALUE` in argv (argparse's two spellings)."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


def main():
    argv = sys.argv[1:]
    script = arg_value(argv, "--peer-script")
    if script is not None:
        i = next(i for i, a in enumerate(argv) if a == "--peer-script" or a.startswith("--peer-script="))
        del argv[i:i + (2 if argv[i] == "--peer-script" else 1)]
    else:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        shared = os.environ.get("IMDB_LORA_SHARED") or os.path.join(repo, "..", "shared")
        script = os.path.join(shared, "peer", "peft_imdb.py")
    print_only = "--print-targets" in argv
    argv = [a for a in argv if a != "--print-targets"]

    model = arg_value(argv, "--model")
    if model is None:
        sys.exit("peft_imdb_family: --model is required")
    with open(os.path.join(model, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    targets = default_targets(model_type)
    if print_only:
        print(json.dumps({"model_type": model_type, "target_modules": targets, "peer_script": script}))
        return
    if not os.path.isfile(script):
        sys.exit(f"peft_imdb_family: {script} does not exist (set --peer-script or IMDB_LORA_SHARED)")

    import peft

    original = peft.LoraConfig

    def lora_config(*args, **kwargs):
        kwargs["target_modules"] = list(targets)
        return original(*args, **kwargs)

    peft.LoraConfig = lora_config
    sys.argv = [script] + argv
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
