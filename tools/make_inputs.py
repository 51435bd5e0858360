#!/usr/bin/python3
"""make_inputs.py — random .npy inputs for a model exported by export_opt.py.

    /usr/bin/python3 tools/make_inputs.py out/opt.json --batch 2 --seq 5 --past 0 --left-pad 2 -o in/

Reads the model's signature from the .json that export_opt.py writes next to the model and
writes DIR/<input name>.npy for every input: input_ids (int64 tokens, never the pad id),
attention_mask (int64 ones), past_key_values.N.{key,value} ([batch, heads, past, head_dim]
float32, N(0, 1); past may be 0, a prefill) and, for merged models, use_cache_branch (bool [1],
true iff past > 0 unless --use-cache-branch says otherwise).

--left-pad K pads every row after the first on the left, as a tokenizer batching prompts of
different lengths does: the first K of its past + seq positions get attention_mask 0, and
where those positions fall in the new tokens, input_ids = pad (1). Row 0 stays unpadded, so a
batch mixes both cases.
"""

import argparse
import json
import os
import sys

import numpy as np


class InputError(Exception):
    pass


def load_meta(path: str) -> dict:
    try:
        with open(path) as f:
            meta = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON: {e}")
    if not isinstance(meta, dict) or "inputs" not in meta or "config" not in meta:
        raise InputError(f"{path}: not a model description from export_opt.py (no 'inputs'/'config')")
    return meta


def make_inputs(meta: dict, batch: int, seq: int, past=None, left_pad: int = 0, seed: int = 0,
                use_cache_branch=None) -> dict:
    """Input arrays keyed by input name, for the model `meta` describes."""
    cfg = meta["config"]
    names = [v["name"] for v in meta["inputs"]]
    has_past = any(n.startswith("past_key_values.") for n in names)
    merged = "use_cache_branch" in names
    if batch < 1 or seq < 1:
        raise InputError(f"--batch and --seq must be at least 1 (got {batch}, {seq})")
    if has_past and past is None:
        raise InputError("the model takes past_key_values: give --past P (0 for a prefill)")
    if not has_past and past:
        raise InputError("the model has no past_key_values inputs: --past must be 0 or absent")
    past = past or 0
    if past < 0 or left_pad < 0:
        raise InputError("--past and --left-pad must not be negative")
    if merged:
        if use_cache_branch is None:
            use_cache_branch = past > 0
        if not use_cache_branch and past > 0:
            raise InputError("use_cache_branch false runs the no-past branch, which ignores the past: use --past 0")
    elif use_cache_branch is not None:
        raise InputError("--use-cache-branch is only for merged models")
    total = past + seq
    if left_pad >= total:
        raise InputError(f"--left-pad {left_pad} would pad every position of a row (past + seq = {total})")
    if left_pad and batch < 2:
        raise InputError("--left-pad pads rows after the first: use --batch 2 or more")
    if total > cfg["max_position_embeddings"]:
        raise InputError(f"past + seq = {total} exceeds max_position_embeddings {cfg['max_position_embeddings']}")

    rng = np.random.default_rng(seed)
    pad = cfg.get("pad_token_id", 1)
    ids = rng.integers(3, cfg["vocab_size"], size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, total), dtype=np.int64)
    if left_pad:
        mask[1:, :left_pad] = 0
        new_pad = max(0, left_pad - past)   # padded positions among the new tokens
        ids[1:, :new_pad] = pad
    feeds = {"input_ids": ids, "attention_mask": mask}
    heads = cfg["num_attention_heads"]
    head_dim = cfg["hidden_size"] // heads
    for n in names:
        if n.startswith("past_key_values."):
            feeds[n] = rng.standard_normal((batch, heads, past, head_dim), dtype=np.float32)
    if merged:
        feeds["use_cache_branch"] = np.array([bool(use_cache_branch)], dtype=np.bool_)
    unknown = [n for n in names if n not in feeds]
    if unknown:
        raise InputError(f"do not know how to make input(s) {', '.join(unknown)}")
    return feeds


def write_inputs(out_dir: str, feeds: dict):
    os.makedirs(out_dir, exist_ok=True)
    for name, arr in feeds.items():
        np.save(os.path.join(out_dir, name + ".npy"), arr)


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_inputs.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_json", metavar="MODEL.json", help="the .json export_opt.py wrote next to the model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=8)
    p.add_argument("--past", type=int, help="past length for with-past/merged models (0: prefill)")
    p.add_argument("--left-pad", type=int, default=0, metavar="K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--use-cache-branch", choices=("true", "false"),
                   help="merged models: which branch to run (default: true iff --past > 0)")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    a = p.parse_args(argv)
    ucb = None if a.use_cache_branch is None else a.use_cache_branch == "true"
    try:
        meta = load_meta(a.model_json)
        feeds = make_inputs(meta, a.batch, a.seq, a.past, a.left_pad, a.seed, ucb)
        write_inputs(a.output, feeds)
    except InputError as e:
        print(f"make_inputs: error: {e}", file=sys.stderr)
        return 2
    desc = ", ".join(f"{k} {list(v.shape)}" for k, v in feeds.items() if not k.startswith("past_key_values.")
                     or k == "past_key_values.0.key")
    print(f"make_inputs: wrote {len(feeds)} inputs to {a.output} ({desc})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
