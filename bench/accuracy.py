#!/usr/bin/python3
"""accuracy.py — the work behind bench/accuracy.sh: plans, variance-aware tuning, evaluation,
and docs/accuracy.md.

Every plan of a model is scored by ONE `bqc eval` process (-plan given once per plan), so the
fp32 reference is computed once per batch and every row of a model's table is measured on the
same predictions; the two models run side by side, one core each. The bpw and memory-density
columns are eval's own (plan_summarise, the numbers `bqc --report` prints), for sequences of
256 tokens (the window).

Variance-aware rows: a plan with "block": "auto" for every operand of the density set (the lm_head
keeps the fixed plan's B = 16, so the comparison is over exactly the operands the bits count)
and the candidate blocks below; its SQNR target is tuned per model by bisection on
`bqc MODEL -plan P --calib valid.txt --report=json` so that its bits over the density set are
as close as possible to those of the fixed B = 16 plan of the same element width.

Run by bench/accuracy.sh (which exports the models); by hand:
    /usr/bin/python3 bench/accuracy.py --bqc build/bqc --natural N.onnx --outliers O.onnx --work build/accuracy
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = "/work/shared/data/wikitext-2"
if not os.path.isdir(DATA):
    DATA = os.path.join(ROOT, "..", "shared", "data", "wikitext-2")
TEST, VALID = os.path.join(DATA, "test.txt"), os.path.join(DATA, "valid.txt")
CTX = 256                      # the model's context: windows and the density sequence
DEFAULT_WINDOWS = 64
AUTO_CANDIDATES = [8, 16, 32, 64, 128, 256]


def say(msg):
    print(f"bench: {msg}", flush=True)


# ---- the plans -------------------------------------------------------------------------------

def wa(fmt, **extra):
    """Every matmul (six linears, Q·Kᵀ, P·V, lm_head): weights and inputs in fmt."""
    return {"default": {"weight": fmt, "input": fmt}, **extra}


def rules(*rs, default=None):
    p = {"rules": list(rs)}
    if default:
        p["default"] = default
    return p


ATTN8 = [{"kind": "attn_qk", "input": "bfp8/16", "weight": "bfp8/16"},
         {"kind": "attn_pv", "input": "bfp8/16", "weight": "bfp8/16"}]

# (id, group, label, formats as printed, plan)
PLANS = [
    ("fp32", "ref", "fp32", "everything fp32", {}),
    ("bfp8", "wa", "bfp W8A8, B = 16", "bfp8/16", wa("bfp8/16")),
    ("bfp6", "wa", "bfp W6A6, B = 16", "bfp6/16", wa("bfp6/16")),
    ("bfp5", "wa", "bfp W5A5, B = 16", "bfp5/16", wa("bfp5/16")),
    ("bfp4", "wa", "bfp W4A4, B = 16", "bfp4/16", wa("bfp4/16")),
    ("mxint8", "wa", "MX int8 W8A8", "mxint8 (B = 32)", wa("mxint8")),
    ("mxfp6e3m2", "wa", "MX fp6 E3M2 W6A6", "mxfp6e3m2 (B = 32)", wa("mxfp6e3m2")),
    ("mxfp6e2m3", "wa", "MX fp6 E2M3 W6A6", "mxfp6e2m3 (B = 32)", wa("mxfp6e2m3")),
    ("mxfp4", "wa", "MX fp4 W4A4", "mxfp4 (E2M1, B = 32)", wa("mxfp4")),
    ("bm8", "wa", "block minifloat W8A8", "bm8e4/16 (E4M3)", wa("bm8e4/16")),
    ("bl8", "wa", "block log W8A8", "bl8/16", wa("bl8/16")),
    ("bl5", "wa", "block log W5A5", "bl5/16", wa("bl5/16")),
    ("int8_32", "wa", "int8 W8A8, B = 32", "int8/32 (Q8_0-like)", wa("int8/32")),
    ("int4_32", "wa", "int4 W4A4, B = 32", "int4/32 (Q4_0-like)", wa("int4/32")),
    ("int8_row", "coarse", "int8 W8A8, one scale per row", "int8/row: block = K (P·V: int8/256, the whole window)",
     wa("int8/row", rules=[{"kind": "attn_pv", "input": "int8/256", "weight": "int8/256"}])),
    ("int4_w", "coarse", "int4 weight-only, fp32 activations", "int4/32 weights (linears, lm_head); all else fp32",
     rules({"kind": "linear", "weight": "int4/32"}, {"kind": "lm_head", "weight": "int4/32"})),
    ("bfp4_head8", "mixed", "bfp W4A4, lm_head 8-bit", "bfp4/16; lm_head bfp8/16",
     wa("bfp4/16", rules=[{"kind": "lm_head", "weight": "bfp8/16", "input": "bfp8/16"}])),
    ("bfp4_head_attn8", "mixed", "bfp W4A4, lm_head and attention 8-bit", "bfp4/16; lm_head, Q·Kᵀ, P·V bfp8/16",
     wa("bfp4/16", rules=[{"kind": "lm_head", "weight": "bfp8/16", "input": "bfp8/16"}] + ATTN8)),
    ("bfp_w4a8", "mixed", "bfp W4A8", "weights bfp4/16; activations (and Q·Kᵀ, P·V) bfp8/16",
     {"default": {"input": "bfp8/16"},
      "rules": [{"kind": "linear", "weight": "bfp4/16"}, {"kind": "lm_head", "weight": "bfp4/16"}] + ATTN8}),
]
AUTO_WIDTHS = [4, 5, 6]        # variance-aware rows: bfp<w>/auto against bfp<w>/16


def auto_plan(width, target):
    return {"default": {"weight": f"bfp{width}/auto", "input": f"bfp{width}/auto"},
            "rules": [{"kind": "lm_head", "weight": f"bfp{width}/16", "input": f"bfp{width}/16"}],
            "block_size": {"weight": AUTO_CANDIDATES, "input": AUTO_CANDIDATES, "target_sqnr_db": round(target, 4)}}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    return path


# ---- variance-aware tuning -------------------------------------------------------------------

def report(bqc, model, plan, calib=True):
    cmd = [bqc, model, "-plan", plan, "--report=json", "--report-seq", str(CTX)] + (["--calib", VALID] if calib else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bits(summary):
    return summary["weight_bpw"] * summary["density_weights"] + summary["activation_bpw"] * summary["density_activations"]


def sqnr_points(rep):
    """Every candidate SQNR of the auto operands: the targets where a choice can change."""
    pts = set()
    for row in rep["tensors"]:
        for v in (row.get("block_size") or {}).get("sqnr_db", []):
            if v is not None:
                pts.add(v)
    return sorted(pts)


def tune(bqc, model, width, plan_dir, tag):
    """The SQNR target whose bits over the density set are closest to bfp<width>/16's.

    A block changes only where the target crosses a candidate's SQNR, so the targets tried are
    the midpoints between consecutive SQNRs of the evidence (the first report's), bisected:
    bits grow with the target (smaller blocks)."""
    fixed = bits(report(bqc, model, os.path.join(plan_dir, f"bfp{width}.json"), calib=False)["summary"])
    tmp = os.path.join(plan_dir, f"tune-{tag}-bfp{width}.json")
    cache = {}

    def at(t):
        if t not in cache:
            write_json(tmp, auto_plan(width, t))
            cache[t] = report(bqc, model, tmp)
        return cache[t]

    pts = sqnr_points(at(0.0))
    targets = [0.0] + [round((x + y) / 2, 4) for x, y in zip(pts, pts[1:])] + [round(pts[-1] + 1, 4)] if pts else [0.0]
    lo, hi = 0, len(targets) - 1
    if bits(at(targets[lo])["summary"]) > fixed:
        hi = lo
    elif bits(at(targets[hi])["summary"]) <= fixed:
        lo = hi
    else:
        while hi - lo > 1:       # invariant: bits(lo) <= fixed < bits(hi)
            mid = (lo + hi) // 2
            if bits(at(targets[mid])["summary"]) <= fixed:
                lo = mid
            else:
                hi = mid
    t = min((targets[lo], targets[hi]), key=lambda x: (abs(bits(at(x)["summary"]) - fixed), x != targets[lo]))
    os.remove(tmp)
    rep = at(t)
    chosen = {}
    for row in rep["tensors"]:
        bs = row.get("block_size")
        if bs:
            key = "weights" if row["kind"] == "linear" and row["role"] == "weight" else "activations"
            chosen.setdefault(key, {}).setdefault(bs["chosen"], 0)
            chosen[key][bs["chosen"]] += 1
    return t, {"target": t, "fixed_bits": fixed, "auto_bits": bits(rep["summary"]), "blocks": chosen,
               "reports": len(cache) + 1, "summary": rep["summary"]}


# ---- evaluation ------------------------------------------------------------------------------

def last_progress(log):
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 400))
            lines = [l for l in f.read().decode(errors="replace").splitlines() if l.startswith("bqc eval:")]
        return lines[-1][len("bqc eval: "):] if lines else "starting"
    except OSError:
        return "starting"


def evaluate(bqc, jobs, windows):
    """jobs: {tag: (model, [plan paths], out.jsonl, log)}; runs them side by side."""
    procs = {}
    for tag, (model, plans, out, log) in jobs.items():
        cmd = [bqc, "eval", model, "--text", TEST, "--calib", VALID, "--json", "--progress", "--batch", "4",
               "--threads", "1"]
        if windows:
            cmd += ["--limit", str(windows), "--spread"]
        for p in plans:
            cmd += ["-plan", p]
        say(f"{tag}: {len(plans)} plans: {' '.join(shlex.quote(c) for c in cmd[:6])} ... ({out})")
        with open(out, "w") as fo, open(log, "w") as fl:
            procs[tag] = (subprocess.Popen(cmd, stdout=fo, stderr=fl), log)
    shown = None
    while any(p.poll() is None for p, _ in procs.values()):
        time.sleep(5)
        line = " | ".join(f"{tag} {last_progress(log)}" for tag, (_, log) in procs.items())
        if line != shown:
            say(line)
            shown = line
    for tag, (p, log) in procs.items():
        if p.returncode != 0:
            sys.exit(f"bench: bqc eval failed for {tag} (exit {p.returncode}); see {log}:\n" + open(log).read()[-2000:])


def read_results(path):
    with open(path) as f:
        return {os.path.splitext(os.path.basename(r["plan"]))[0]: r for r in map(json.loads, f)}


# ---- the document ----------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def outlier_info(bqc_build):
    """The outlier checkpoint's record (channels, alpha), or None if torch is not at hand."""
    env = dict(os.environ, BQC_BUILD_DIR=bqc_build)
    try:
        path = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "models.py"), "--which", "outliers",
                               "--checkpoint-only"], check=True, capture_output=True, text=True, env=env).stdout.split()[-1]
        import torch
        ck = torch.load(path, map_location="cpu", weights_only=False)
        return dict(ck["outliers"], path=path)
    except Exception:      # provenance is best effort: the doc says when it is missing
        return None


def pct(r, ref):
    return 100.0 * (r["perplexity"] / ref - 1.0)


def fmt_row(label, formats, r, ref):
    return (f"| {label} | {formats} | {r['perplexity']:.4f} | {pct(r, ref):+.2f}% | {r['kl']:.4f} | {r['top1']:.2f}% | "
            f"{r['weight_bpw']:.2f} | {r['activation_bpw']:.2f} | {r['memory_density']:.2f}× |")


HEADER = ("| plan | formats | perplexity | Δ vs fp32 | KL (nats) | top-1 | W bpw | A bpw | density |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|---:|")
GROUPS = [("ref", None), ("wa", "W+A: every matmul in one format"),
          ("coarse", "Coarse baselines the paper beats"), ("mixed", "Mixed precision")]


def table(res):
    ref = res["fp32"]["perplexity"]
    out = [HEADER]
    for group, title in GROUPS:
        if title:
            out.append(f"| *{title}* | | | | | | | | |")
        for pid, g, label, formats, _ in PLANS:
            if g == group:
                out.append(fmt_row(label, formats, res[pid], ref))
    return "\n".join(out)


def blocks_str(blocks):
    parts = []
    for key in ("weights", "activations"):
        if key in blocks:
            parts.append(key + " " + ", ".join(f"{b}: {n}" for b, n in sorted(blocks[key].items())))
    return "; ".join(parts)


def va_table(results, tuned):
    out = ["| model | width | plan | target SQNR | W bpw | A bpw | density | bits vs fixed | perplexity | Δ vs fp32 | KL | top-1 |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for tag, res in results.items():
        ref = res["fp32"]["perplexity"]
        for w in AUTO_WIDTHS:
            f, a, t = res[f"bfp{w}"], res[f"bfp{w}_auto"], tuned[tag][w]
            dbits = 100.0 * (t["auto_bits"] / t["fixed_bits"] - 1.0)
            for name, r, tgt, db in (("fixed B = 16", f, "–", "–"), ("auto", a, f"{t['target']:.2f} dB", f"{dbits:+.2f}%")):
                out.append(f"| {tag} | {w} | {name} | {tgt} | {r['weight_bpw']:.3f} | {r['activation_bpw']:.3f} | "
                           f"{r['memory_density']:.3f}× | {db} | {r['perplexity']:.4f} | {pct(r, ref):+.2f}% | "
                           f"{r['kl']:.5f} | {r['top1']:.2f}% |")
            better_ppl, better_kl = a["perplexity"] < f["perplexity"], a["kl"] < f["kl"]
            cheaper = t["auto_bits"] <= t["fixed_bits"] * (1 + 1e-9)
            if better_ppl and better_kl:
                v = "auto wins" if cheaper else "auto is better but spends more bits"
            elif not better_ppl and not better_kl:
                v = "fixed B = 16 wins"
            else:
                v = "mixed (one of perplexity/KL each)"
            verdicts.append((tag, w, v, dbits, a, f, t))
    return "\n".join(out), verdicts


def claim_lines(results):
    lines = []
    for tag, res in results.items():
        ref = res["fp32"]["perplexity"]
        d = {k: pct(res[k], ref) for k in res}
        b6, row = d["bfp6"], d["int8_row"]
        four = {k: d[k] for k in ("bfp4", "mxfp4", "int4_32")}
        mixed = {k: d[k] for k in ("bfp4_head8", "bfp4_head_attn8", "bfp_w4a8")}
        rec = {k: (d["bfp4"] - v) / d["bfp4"] * 100 if d["bfp4"] > 0 else float("nan") for k, v in mixed.items()}
        lines.append(f"- **{tag} model.** "
                     f"bfp6/16 W6A6: {b6:+.2f}% perplexity ({'within' if abs(b6) <= 2 else 'outside'} 1–2% of fp32: "
                     f"{'confirmed' if abs(b6) <= 2 else 'refuted'}). "
                     f"Per-row int8 W8A8: {row:+.2f}% — bfp6 W6A6 is "
                     f"{'better' if res['bfp6']['perplexity'] < res['int8_row']['perplexity'] else 'not better'} "
                     f"({'confirmed' if res['bfp6']['perplexity'] < res['int8_row']['perplexity'] else 'refuted'} on this model). "
                     f"4-bit W+A: bfp4/16 {four['bfp4']:+.2f}%, mxfp4 {four['mxfp4']:+.2f}%, int4/32 {four['int4_32']:+.2f}% "
                     f"({'clearly worse: ≥ 5%' if min(four.values()) >= 5 else 'not all ≥ 5%'} — "
                     f"{'confirmed' if min(four.values()) >= 5 else 'only partly confirmed'}). "
                     "Mixed rows recover of bfp4's perplexity gap: "
                     + ", ".join(f"{k} {v:.0f}%" for k, v in rec.items()) + ".")
    return "\n".join(lines)


def write_doc(a, results, tuned, timing, eval_cmds):
    ref_stats = {tag: res["fp32"] for tag, res in results.items()}
    any_r = next(iter(results["natural"].values()))
    meta = json.load(open(os.path.join(ROOT, "models", "opt-wt2.json")))
    info = outlier_info(a.build_dir)
    head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    total_windows = os.path.getsize(TEST) // CTX
    nwin, npred = any_r["windows"], any_r["predictions"]
    slice_txt = ("every window of test.txt" if not a.windows else
                 f"{nwin} of its {total_windows} windows, evenly spaced (window ⌊i·{total_windows}/{nwin}⌋, "
                 f"`--limit {nwin} --spread`)")
    vtab, verdicts = va_table(results, tuned)
    L = []
    L.append("# Accuracy of block formats on the trained byte-level OPT\n")
    L.append("Produced by `bash bench/accuracy.sh" + ("".join(" " + shlex.quote(x) for x in a.passthrough)) +
             f"` — do not edit by hand; re-run it. {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{timing['total']:.0f} s in all ({timing['eval']:.0f} s evaluating, {timing['tune']:.0f} s tuning the "
             f"variance-aware plans) on {a.machine}.\n")
    L.append("Every number is the bqc interpreter's (the reference kernels; `--exec=c` computes the same bits: "
             "tests/e2e/test_eval.sh). Rows of one model were scored by one `bqc eval` process against one fp32 "
             "reference, on the same predictions.\n")
    L.append("## What was measured\n")
    L.append(f"- **Model**: `models/opt-wt2.pt` (sha256 `{meta['checkpoint_sha256'][:16]}…`), an OPT-125m-shaped "
             f"decoder scaled down — {meta['config']['num_hidden_layers']} layers, d {meta['config']['hidden_size']}, "
             f"{meta['config']['num_attention_heads']} heads, FFN {meta['config']['ffn_dim']}, context "
             f"{meta['config']['max_position_embeddings']}, byte vocabulary of {meta['config']['vocab_size']}, "
             f"{meta['parameters']:,} parameters, pre-LN, ReLU, tied lm_head — trained by `{meta['command']}` "
             f"({meta['steps']} steps × {meta['batch']} windows × {meta['ctx']} bytes of WikiText-2 *valid.txt*, "
             "the train split being unavailable here; docs/model.md). Its fp32 perplexity on the whole test set is "
             "5.466 per byte (2.451 bits/byte).")
    if info:
        ch = info["channels"][0]
        L.append(f"- **Outlier copy**: `tools/make_outliers.py` (alpha {info['alpha']:g}, seed {info['seed']}): in every "
                 f"layer, LayerNorm γ and β of channels {', '.join(map(str, ch))} × {info['alpha']:g} and the input "
                 f"columns of the Linears reading them (q/k/v_proj, fc1) ÷ {info['alpha']:g}. The same function (logits "
                 f"differ by {info['logits_max_rel_diff']:.1e} relative), but the matmul inputs after each LayerNorm have "
                 f"a few channels ≥ {info['min_ratio']:.0f}× the others, as large OPTs do. The residual stream, the "
                 "attention's q/k/v, out_proj's and fc2's inputs are unchanged.")
    else:
        L.append("- **Outlier copy**: `tools/make_outliers.py` with its defaults (see docs/model.md); its record could "
                 "not be read here (no torch).")
    L.append(f"- **ONNX**: `tools/models.py --which both --opset 17`: `{os.path.relpath(a.natural, ROOT)}`, "
             f"`{os.path.relpath(a.outliers, ROOT)}`.")
    L.append(f"- **Data**: WikiText-2 `test.txt` ({os.path.getsize(TEST):,} bytes, sha256 `{sha256(TEST)[:16]}…`), "
             f"byte tokens, non-overlapping windows of {CTX}; the first byte of each window is context only. "
             f"**Slice: {slice_txt}: {npred:,} predictions per row "
             f"({100.0 * npred / (total_windows * (CTX - 1)):.1f}% of the test set).** On this slice fp32 perplexity is "
             + ", ".join(f"{r['perplexity']:.4f} ({tag})" for tag, r in ref_stats.items()) + ".")
    L.append(f"- **Calibration** (only the variance-aware rows use it): `valid.txt`, 4 windows of {CTX} tokens "
             "(the default of `--calib`), i.e. training text.")
    L.append(f"- **bqc**: commit `{head[:12] or 'unknown'}`" + (" with uncommitted changes in the working tree" if dirty else "")
             + f"; the evaluation commands were `{eval_cmds}`.")
    L.append("")
    L.append("## Columns and scope\n")
    L.append("- **perplexity**: per byte, exp(mean NLL) over the slice's predictions; **Δ vs fp32**: its relative "
             "change against the fp32 model on the same predictions; **KL**: mean KL(fp32 ‖ quantised) of the "
             "next-byte distributions, in nats; **top-1**: how often the quantised model's most likely next byte is "
             "fp32's.")
    L.append(f"- **W bpw**: average bits per weight of q/k/v/out_proj, fc1, fc2; **A bpw**: average bits per element "
             f"of their input activations and of both attention matmuls' operands (q, k; probabilities, v) for one "
             f"{CTX}-token sequence; **density**: formats.md §8, 32 · elements / bits over those matmuls (fp32 = 1×; "
             "bfp6/16 W6A6 = 32/6.5 = 4.92×). The figures are `bqc --report`'s (plan_summarise).")
    L.append("- **What a row quantises**: \"W+A\" rows put every matmul in the format: the six Linears of each layer, "
             "Q·Kᵀ, P·V, *and the lm_head* (tied to the token embedding; outside the bpw and density figures, as "
             "formats.md §8 defines them). Biases, embeddings, LayerNorm, softmax and residual adds stay fp32 "
             "everywhere. Blocks run along each matmul's K (formats.md §0), so Q·Kᵀ blocks cover a head's 64 "
             "dimensions and P·V blocks the keys.")
    L.append("- **bl widths**: bl8/16 is the 8-bit point of the other W8A8 rows; bl5/16 is the narrowest whose 15 "
             "binades below a block's maximum still cover most of a block (bl4/16 has 7). A block-log element is a "
             "signed power of two whatever its width: the width buys range, not precision (its step is a factor √2 "
             "around each value), which is the point these two rows make.")
    L.append("- **mxfp6**: both OCP element types are rows (E3M2: more range, E2M3: more precision).")
    L.append("- **Per-row int8** (vector-wise, as LLM.int8() without its fp16 outlier split and ZeroQuant-style "
             "per-token activations): `int8/row`, one fp16 scale per row of K — per output channel for weights, per "
             "token for activations (and per query/head for Q·Kᵀ's 64 dimensions). P·V reduces over the keys, "
             "whose number is the sequence, so its plan names the block: int8/256, the whole window.")
    L.append("")
    for tag in results:
        L.append(f"## The {tag} model\n")
        L.append(table(results[tag]) + "\n")
    L.append("## Variance-aware blocks against fixed B = 16\n")
    L.append(f"Plans with `\"block\": \"auto\"` for every weight and input of the density set (candidates "
             f"{AUTO_CANDIDATES}, block-size pass, calibration on valid.txt; the lm_head keeps bfp<w>/16 as in the "
             "fixed plan). The SQNR target was bisected per model and width "
             "(over the midpoints between the candidates' SQNRs, where a choice can change, with `bqc --report=json`) to put the plan's bits over the density set as close as "
             "possible to the fixed plan's: \"bits vs fixed\" is the remaining difference (negative: auto spends "
             "fewer bits). The pass takes, per tensor, the largest block whose SQNR meets the target.\n")
    L.append(vtab + "\n")
    L.append("Blocks the pass chose (tensors per block size):\n")
    for tag in results:
        for w in AUTO_WIDTHS:
            L.append(f"- {tag}, bfp{w}: {blocks_str(tuned[tag][w]['blocks'])}")
    L.append("")
    L.append("Verdicts (lower perplexity *and* lower KL at no more bits = a win):\n")
    for tag, w, v, dbits, a_, f_, t in verdicts:
        L.append(f"- {tag}, bfp{w}: **{v}** — perplexity {a_['perplexity']:.4f} vs {f_['perplexity']:.4f}, "
                 f"KL {a_['kl']:.5f} vs {f_['kl']:.5f}, at {dbits:+.2f}% bits.")
    L.append("")
    L.append("## The paper's claims on this model\n")
    L.append("Computed from the tables above (\"clearly\" is read as ≥ 5% perplexity):\n")
    L.append(claim_lines(results) + "\n")
    L.append(DISCUSSION_MARK)
    L.append("")
    text = "\n".join(L)
    keep = ""
    if os.path.exists(a.out):       # the hand-written discussion below the marker survives a re-run
        old = open(a.out).read()
        if DISCUSSION_MARK in old:
            keep = old.split(DISCUSSION_MARK, 1)[1].lstrip("\n")
    with open(a.out, "w") as f:
        f.write(text + (keep if keep else DISCUSSION_PLACEHOLDER))
    say(f"wrote {a.out}")


DISCUSSION_MARK = "<!-- discussion: written by hand from the numbers above; bench/accuracy.sh keeps it -->"
DISCUSSION_PLACEHOLDER = "## Discussion\n\n(To be written from the numbers above.)\n"


# ---- main ------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bqc", required=True)
    ap.add_argument("--natural", required=True)
    ap.add_argument("--outliers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--windows", type=int, default=DEFAULT_WINDOWS, help=f"windows of test.txt (default {DEFAULT_WINDOWS}, spread)")
    ap.add_argument("--full", action="store_true", help="every window of test.txt")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "accuracy.md"))
    a = ap.parse_args()
    a.passthrough = [x for x in sys.argv[1:] if x not in ("--bqc", a.bqc, "--natural", a.natural, "--outliers",
                                                           a.outliers, "--work", a.work)]
    if a.full:
        a.windows = 0
    a.build_dir = os.environ.get("BQC_BUILD_DIR", os.path.join(ROOT, "build"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    a.machine = f"{cpu}, {os.cpu_count()} cores"
    t0 = time.time()
    plan_dir = os.path.join(a.work, "plans")
    common = [write_json(os.path.join(plan_dir, f"{pid}.json"), plan) for pid, _, _, _, plan in PLANS]
    models = {"natural": a.natural, "outliers": a.outliers}
    tuned = {tag: {} for tag in models}
    say(f"tuning the variance-aware plans (bfp{'/bfp'.join(map(str, AUTO_WIDTHS))} auto, both models, two at a time)")

    def one(job):
        tag, w = job
        t, info = tune(a.bqc, models[tag], w, plan_dir, tag)
        write_json(os.path.join(a.work, tag, f"bfp{w}_auto.json"), auto_plan(w, t))
        say(f"{tag}: bfp{w}/auto target {t:.2f} dB: {info['auto_bits']:.0f} bits vs bfp{w}/16's {info['fixed_bits']:.0f} "
            f"({info['reports']} reports)")
        return tag, w, info

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for tag, w, info in pool.map(one, [(tag, w) for tag in models for w in AUTO_WIDTHS]):
            tuned[tag][w] = info
    t1 = time.time()
    jobs = {}
    for tag, model in models.items():
        plans = common + [os.path.join(a.work, tag, f"bfp{w}_auto.json") for w in AUTO_WIDTHS]
        jobs[tag] = (model, plans, os.path.join(a.work, f"{tag}.jsonl"), os.path.join(a.work, f"{tag}.log"))
    evaluate(a.bqc, jobs, a.windows)
    t2 = time.time()
    results = {tag: read_results(jobs[tag][2]) for tag in models}
    json.dump({"results": results, "tuned": {t: {str(w): v for w, v in d.items()} for t, d in tuned.items()}},
              open(os.path.join(a.work, "results.json"), "w"), indent=1)
    eval_cmds = (f"bqc eval MODEL --text test.txt --calib valid.txt {'--limit %d --spread ' % a.windows if a.windows else ''}"
                 f"--batch 4 --threads 1 --json -plan P1 … -plan P{len(jobs['natural'][1])}")
    write_doc(a, results, tuned, {"total": t2 - t0, "eval": t2 - t1, "tune": t1 - t0}, eval_cmds)


if __name__ == "__main__":
    main()
