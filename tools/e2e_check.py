#!/usr/bin/python3
"""e2e_check.py — compare bqc's outputs with onnxruntime's (the oracle), once or over a decode.

Compare two output folders (written by `bqc run ... -o DIR` and tools/ort/ortrun.js):

    e2e_check.py BQC_OUT ORT_OUT

prints one line per output,
    logits: max |bqc - onnxruntime| = 3.1e-07 (tolerance 1e-4 · max|logit| = 2.3e-04) OK
and exits 1 when any output differs by more than its tolerance (rel · the largest magnitude in
onnxruntime's output), is missing on one side, or has another shape or dtype.

Greedy decoding through both runtimes, on a with-past (or merged) model:

    e2e_check.py --decode 3 --model M.onnx --inputs PREFILL_DIR [--bqc PATH] [--consistency NOPAST.onnx]

runs the prefill inputs, then N steps that feed the argmax of onnxruntime's last-position logits
to both runtimes, each runtime getting its own presents back as the next past; every step's
outputs are compared. --consistency also runs the no-past model (same weights: exported with
the same --seed) over the whole sequence in one forward, and requires each runtime's last
decode logits to match its own full-forward logits at the last position. --ort-only skips bqc
(to check an exported model's decode/consistency on its own).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORTRUN = os.path.join(HERE, "ort", "ortrun.js")
REL_TOL = 1e-4


class CheckError(Exception):
    """A runtime failed or an input is unusable (as opposed to a numeric mismatch)."""


# ---------------------------------------------------------------------------------- compare

def load_dir(d: str) -> dict:
    if not os.path.isdir(d):
        raise CheckError(f"{d}: no such folder")
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".npy"):
            try:
                out[f[:-4]] = np.load(os.path.join(d, f), allow_pickle=False)
            except (ValueError, OSError) as e:
                raise CheckError(f"{os.path.join(d, f)}: cannot read: {e}")
    return out


def compare_one(name, a, b, la="bqc", lb="onnxruntime", rel=None):
    """(ok, line, diff, tol) for one output; tolerance from b, the reference."""
    rel = REL_TOL if rel is None else rel
    what = "logit" if name == "logits" else name
    if a is None or b is None:
        return False, f"{name}: missing from {la if a is None else lb} output FAIL", None, None
    if a.shape != b.shape:
        return False, f"{name}: shape {list(a.shape)} ({la}) vs {list(b.shape)} ({lb}) FAIL", None, None
    if a.dtype != b.dtype:
        return False, f"{name}: dtype {a.dtype} ({la}) vs {b.dtype} ({lb}) FAIL", None, None
    if a.size == 0:
        return True, f"{name}: empty {list(a.shape)} in both OK", 0.0, 0.0
    x, y = a.astype(np.float64), b.astype(np.float64)
    diff = np.where(x == y, 0.0, np.abs(x - y))   # equal infinities count as equal
    finite_b = np.abs(y[np.isfinite(y)])
    tol = rel * (finite_b.max() if finite_b.size else 0.0)
    if np.isnan(diff).any():
        n = int(np.isnan(diff).sum())
        return False, (f"{name}: {n} NaN difference(s) between {la} and {lb} "
                       f"({int(np.isnan(x).sum())} NaN in {la}, {int(np.isnan(y).sum())} in {lb}) FAIL"), None, tol
    d = float(diff.max())
    ok = d <= tol
    line = (f"{name}: max |{la} - {lb}| = {d:.1e} (tolerance {fmt_rel(rel)} · max|{what}| = {tol:.1e}) "
            f"{'OK' if ok else 'FAIL'}")
    if not ok:
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        line += f" at {list(map(int, idx))}: {la} {x[idx]:.7g}, {lb} {y[idx]:.7g}"
    return ok, line, d, tol


def compare(a: dict, b: dict, la="bqc", lb="onnxruntime", rel=None):
    """Compare every output in either dict; returns (all ok, lines) — one line per output."""
    names = sorted(set(a) | set(b), key=_output_order)
    ok, lines = True, []
    for n in names:
        good, line, _, _ = compare_one(n, a.get(n), b.get(n), la, lb, rel)
        ok &= good
        lines.append(line)
    if not names:
        return False, [f"no outputs in either folder ({la}, {lb}) FAIL"]
    return ok, lines


def fmt_rel(rel: float) -> str:
    """1e-4 rather than 0.0001 or 1e-04."""
    s = f"{rel:.3g}"
    if "e" not in s and 0 < rel < 0.01:
        s = f"{rel:.2e}"
    if "e" in s:
        mant, exp = s.split("e")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        s = f"{mant}e{int(exp)}"
    return s


def _output_order(name):
    # logits first, then present.N.key/value in layer order
    parts = name.split(".")
    if len(parts) == 3 and parts[1].isdigit():
        return (1, parts[0], int(parts[1]), parts[2])
    return (0, name, 0, "")


# ---------------------------------------------------------------------------------- runtimes

def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "(no message)"


def run_ort(model: str, in_dir: str, out_dir: str, threads: int = 1):
    cmd = ["node", ORTRUN, model, "--inputs", in_dir, "-o", out_dir, "--threads", str(threads)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CheckError("node not found: run scripts/setup (installs nodejs and onnxruntime-node)")
    if r.returncode != 0:
        raise CheckError(f"onnxruntime failed on {model}: {_last_line(r.stderr)}")


def run_bqc(bqc: str, model: str, in_dir: str, out_dir: str):
    """`bqc run MODEL -i NAME=FILE.npy ... -o OUTDIR` (the -i form; the tests use --inputs)."""
    cmd = [bqc, "run", model]
    for f in sorted(os.listdir(in_dir)):
        if f.endswith(".npy"):
            cmd += ["-i", f"{f[:-4]}={os.path.join(in_dir, f)}"]
    cmd += ["-o", out_dir]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise CheckError(f"cannot run bqc ({bqc}): {e.strerror}")
    if r.returncode != 0:
        raise CheckError(f"bqc run failed on {model} (exit {r.returncode}): {_last_line(r.stderr)}")


def check_bqc(path):
    if not path:
        raise CheckError("no bqc binary: set $BQC or pass --bqc PATH (or use --ort-only)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CheckError(f"bqc binary {path} does not exist or is not executable (build it, or set $BQC)")


# ---------------------------------------------------------------------------------- decode

class Runtime:
    def __init__(self, label, runner):
        self.label, self.run = label, runner
        self.past = None     # its own presents, fed back as the next past
        self.last = None     # outputs of the latest step


def _save(d, feeds):
    os.makedirs(d, exist_ok=True)
    for k, v in feeds.items():
        np.save(os.path.join(d, k + ".npy"), v)


def compare_brief(a: dict, b: dict, la="bqc", lb="onnxruntime", rel=None):
    """Like compare(), but the presents that pass are summed up in one line (the worst one):
    a 12-layer model has 24 of them per step."""
    ok, lines = True, []
    worst = None
    n_present = 0
    for n in sorted(set(a) | set(b), key=_output_order):
        good, line, d, tol = compare_one(n, a.get(n), b.get(n), la, lb, rel)
        ok &= good
        if n.startswith("present.") and good:
            n_present += 1
            ratio = d / tol if tol else 0.0
            if worst is None or ratio > worst[0]:
                worst = (ratio, line)
        else:
            lines.append(line)
    if worst:
        lines.append(f"{worst[1]}  [worst of {n_present} presents]")
    return ok, lines


def _report_step(tag, bqc_out, ort_out):
    ok, lines = compare_brief(bqc_out, ort_out)
    for l in lines:
        print(f"[{tag}] {l}", flush=True)
    return ok


def decode(args) -> bool:
    prefill = load_dir(args.inputs)
    past_names = sorted((n for n in prefill if n.startswith("past_key_values.")), key=_output_order)
    if "input_ids" not in prefill or "attention_mask" not in prefill or not past_names:
        raise CheckError(f"{args.inputs}: decode needs input_ids, attention_mask and past_key_values.* "
                         f"(a with-past or merged model's inputs)")
    past_len = prefill[past_names[0]].shape[2]
    if args.consistency and past_len != 0:
        raise CheckError(f"--consistency needs a prefill from an empty past (the inputs have past {past_len})")
    work = args.work or tempfile.mkdtemp(prefix="e2e_decode.")
    os.makedirs(work, exist_ok=True)
    runtimes = [Runtime("onnxruntime", lambda i, o, m=args.model: run_ort(m, i, o, args.threads))]
    if not args.ort_only:
        runtimes.insert(0, Runtime("bqc", lambda i, o, m=args.model: run_bqc(args.bqc, m, i, o)))
    B = prefill["input_ids"].shape[0]
    print(f"decode: {os.path.basename(args.model)}: batch {B}, prompt {prefill['input_ids'].shape[1]}, "
          f"past {past_len}, {args.decode} greedy steps, runtimes: {', '.join(r.label for r in runtimes)}",
          flush=True)

    ok = True
    ids_seq = [prefill["input_ids"]]
    mask = prefill["attention_mask"]
    t0 = time.time()
    for step in range(args.decode + 1):
        tag = "prefill" if step == 0 else f"step {step}"
        for rt in runtimes:
            if step == 0:
                feeds = dict(prefill)
            else:
                feeds = {"input_ids": ids_seq[-1], "attention_mask": mask}
                for n in past_names:
                    feeds[n] = rt.past[n.replace("past_key_values.", "present.")]
                if "use_cache_branch" in prefill:
                    feeds["use_cache_branch"] = np.array([True])
            in_dir = os.path.join(work, f"step{step}", f"{rt.label}-in")
            out_dir = os.path.join(work, f"step{step}", f"{rt.label}-out")
            _save(in_dir, feeds)
            rt.run(in_dir, out_dir)
            rt.last = load_dir(out_dir)
            missing = [n for n in past_names if n.replace("past_key_values.", "present.") not in rt.last]
            if missing:
                raise CheckError(f"{rt.label}: step {step} produced no {missing[0].replace('past_key_values.', 'present.')}")
            rt.past = {k: v for k, v in rt.last.items() if k.startswith("present.")}
        ort = runtimes[-1]
        if len(runtimes) == 2:
            ok &= _report_step(tag, runtimes[0].last, ort.last)
        if step < args.decode:
            nxt = np.argmax(ort.last["logits"][:, -1, :], axis=-1).astype(np.int64)[:, None]
            ids_seq.append(nxt)
            mask = np.concatenate([mask, np.ones((B, 1), dtype=mask.dtype)], axis=1)
            print(f"[{tag}] next tokens (argmax of onnxruntime's last logits): {nxt[:, 0].tolist()}", flush=True)

    if args.consistency:
        full = {"input_ids": np.concatenate(ids_seq, axis=1), "attention_mask": mask}
        print(f"consistency: {os.path.basename(args.consistency)} over the whole sequence "
              f"({full['input_ids'].shape[1]} tokens) in one forward", flush=True)
        for rt in runtimes:
            in_dir = os.path.join(work, "full", f"{rt.label}-in")
            out_dir = os.path.join(work, "full", f"{rt.label}-out")
            _save(in_dir, full)
            if rt.label == "bqc":
                run_bqc(args.bqc, args.consistency, in_dir, out_dir)
            else:
                run_ort(args.consistency, in_dir, out_dir, args.threads)
            full_logits = load_dir(out_dir).get("logits")
            if full_logits is None:
                raise CheckError(f"{rt.label}: the no-past model produced no logits")
            good, line, _, _ = compare_one("logits", rt.last["logits"], full_logits[:, -1:, :],
                                           "decode", "full forward")
            print(f"[consistency, {rt.label}] {line}", flush=True)
            ok &= good
    print(f"decode: {'OK' if ok else 'FAIL'} in {time.time() - t0:.1f} s"
          + ("" if ok and not args.work else f" (step inputs/outputs in {work})"), flush=True)
    if ok and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return ok


# ---------------------------------------------------------------------------------- main

def main(argv=None):
    global REL_TOL
    p = argparse.ArgumentParser(prog="e2e_check.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=None)
    p.add_argument("dirs", nargs="*", metavar="DIR", help="BQC_OUT ORT_OUT (compare mode)")
    p.add_argument("--rel-tol", type=float, default=REL_TOL,
                   help=f"tolerance relative to the largest |value| of the reference (default {REL_TOL:g})")
    p.add_argument("--decode", type=int, metavar="N", help="prefill, then N greedy decode steps")
    p.add_argument("--model", help="decode: the with-past (or merged) model")
    p.add_argument("--inputs", metavar="DIR", help="decode: the prefill inputs (make_inputs.py)")
    p.add_argument("--consistency", metavar="NOPAST.onnx",
                   help="decode: check the last step against one no-past forward over the sequence")
    p.add_argument("--bqc", default=os.environ.get("BQC"), help="bqc binary (default $BQC)")
    p.add_argument("--ort-only", action="store_true", help="decode: run onnxruntime only")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--work", metavar="DIR", help="decode: keep step inputs/outputs here")
    a = p.parse_args(argv)
    REL_TOL = a.rel_tol
    try:
        if a.decode is None:
            if len(a.dirs) != 2:
                p.error("compare mode needs two folders: BQC_OUT ORT_OUT")
            ok, lines = compare(load_dir(a.dirs[0]), load_dir(a.dirs[1]), rel=a.rel_tol)
            for l in lines:
                print(l, flush=True)
            return 0 if ok else 1
        if a.dirs:
            p.error("--decode takes --model and --inputs, not folders")
        if a.decode < 0 or not a.model or not a.inputs:
            p.error("--decode N needs N >= 0, --model and --inputs")
        for f in (a.model, a.consistency):
            if f and not os.path.isfile(f):
                raise CheckError(f"{f}: no such file")
        if not a.ort_only:
            check_bqc(a.bqc)
        return 0 if decode(a) else 1
    except CheckError as e:
        print(f"e2e_check: error: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
