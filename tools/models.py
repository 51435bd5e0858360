#!/usr/bin/python3
"""models.py — the trained model (models/opt-wt2.pt) as ONNX, and its outlier copy, cached.

    /usr/bin/python3 tools/models.py                       # opt-wt2 at opsets 14 and 17
    /usr/bin/python3 tools/models.py --which both --opset 14 --variant with-past
    /usr/bin/python3 tools/models.py --which outliers --checkpoint-only

Tools and tests call this instead of retraining or re-exporting. It prints what it does on
stderr and the paths it produced on stdout, one per line, in the order asked (for each model,
each opset), so a shell can take them with $(...).

Everything goes under $BQC_BUILD_DIR/models (default <repo>/build/models):

    opt-wt2-outliers-<key>.pt            make_outliers.py's copy of the checkpoint; key = hash
                                         of the checkpoint, make_outliers.py and its options
    <name>-<key>/<name>-op<N>[-past|-merged].onnx (+ .json from export_opt.py)
                                         key = hash of the checkpoint and of the exporter's
                                         sources (export_opt.py, opt_model.py)

so a new checkpoint, a changed exporter or other outlier options give new entries; making one
removes the other entries of the same name, which can never be hit again. Entries are written under a temporary
name and renamed into place, so concurrent callers never see half a file.
"""

import argparse
import contextlib
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)

PROG = "models"
CHECKPOINT = os.path.join(SOURCE_DIR, "models", "opt-wt2.pt")
VARIANTS = {"plain": [], "with-past": ["--with-past"], "merged": ["--merged"]}
OUTLIER_DEFAULTS = dict(alpha=40.0, k=6, seed=0)


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> str:
    build = os.environ.get("BQC_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
    return os.path.join(build, "models")


def _hash(*parts, files=()) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode() + b"\0")
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:12]


def _publish(tmp: str, final: str):
    """Rename tmp into place; if a concurrent caller got there first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not os.path.exists(final):
            raise


def _prune(name: str, keep: str, suffix: str):
    """Remove the other cache entries <name>-<key><suffix> (made from another checkpoint or by
    older tools: their keys can never be hit again)."""
    pat = re.compile(re.escape(name) + r"-[0-9a-f]{12}" + re.escape(suffix))
    for e in os.listdir(cache_dir()):
        if e != keep and pat.fullmatch(e):
            log(f"removing the stale {e}")
            path = os.path.join(cache_dir(), e)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def outlier_checkpoint(ckpt=CHECKPOINT, alpha=40.0, k=6, seed=0) -> str:
    """Path of the outlier copy of `ckpt` (made by make_outliers.py unless cached)."""
    import make_outliers
    stem = os.path.basename(ckpt)[:-3] if ckpt.endswith(".pt") else os.path.basename(ckpt)
    key = _hash(alpha, k, seed, files=(ckpt, make_outliers.__file__))
    out = os.path.join(cache_dir(), f"{stem}-outliers-{key}.pt")
    if os.path.exists(out):
        log(f"outlier copy of {os.path.basename(ckpt)}: cached {out}")
        return out
    log(f"making the outlier copy of {ckpt} (alpha {alpha:g}, {k} channels, seed {seed}) -> {out}")
    os.makedirs(cache_dir(), exist_ok=True)
    # torch.save names the archive after the file: write under the final name, so the bytes
    # (and the export key derived from them) do not depend on a temporary name
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".tmp.") as tmp:
        make_outliers.make(ckpt, os.path.join(tmp, os.path.basename(out)), alpha=alpha, k=k, seed=seed)
        _publish(os.path.join(tmp, os.path.basename(out)), out)
    _prune(f"{stem}-outliers", os.path.basename(out), ".pt")
    return out


def export(ckpt: str, opset: int, variant: str = "plain", name=None) -> str:
    """Path of `ckpt` exported by export_opt.py at `opset` (unless cached)."""
    import export_opt
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
    name = name or (os.path.basename(ckpt)[:-3] if ckpt.endswith(".pt") else os.path.basename(ckpt))
    key = _hash(files=(ckpt, export_opt.__file__, os.path.join(HERE, "opt_model.py")))
    d = os.path.join(cache_dir(), f"{name}-{key}")
    file = f"{name}-op{opset}{'' if variant == 'plain' else '-' + variant.split('-')[-1]}.onnx"
    out = os.path.join(d, file)
    if os.path.exists(out):
        log(f"{name} opset {opset} {variant}: cached {out}")
        return out
    log(f"exporting {name} at opset {opset} ({variant}) -> {out}")
    os.makedirs(d, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=d, prefix=".tmp.")
    try:
        argv = ["--weights", ckpt, "--opset", str(opset), *VARIANTS[variant], "-o", os.path.join(tmp, file)]
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            try:
                status = export_opt.main(argv)
            except export_opt.ExportError as e:
                status = f"error: {e}"
        if status:
            sys.stderr.write(buf.getvalue())
            raise RuntimeError(f"export_opt.py {' '.join(argv)} failed ({status})")
        side = file[:-5] + ".json"
        _publish(os.path.join(tmp, side), os.path.join(d, side))   # sidecar first: the .onnx marks completion
        _publish(os.path.join(tmp, file), out)
        _prune(name, os.path.basename(d), "")
    finally:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="models.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--which", choices=("original", "outliers", "both"), default="original")
    p.add_argument("--opset", type=int, action="append", choices=(13, 14, 17),
                   help="opset to export (repeatable; default 14 and 17)")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="plain")
    p.add_argument("--checkpoint", default=CHECKPOINT, help="default models/opt-wt2.pt")
    p.add_argument("--checkpoint-only", action="store_true",
                   help="print the checkpoint paths (making the outlier copy if asked), export nothing")
    a = p.parse_args(argv)
    if not os.path.isfile(a.checkpoint):
        log(f"error: {a.checkpoint}: no such checkpoint (train it with tools/train_opt.py)")
        return 2
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    src = os.path.abspath(a.checkpoint)
    stem = os.path.basename(src)[:-3] if src.endswith(".pt") else os.path.basename(src)
    todo = []   # (name, checkpoint)
    if a.which in ("original", "both"):
        todo.append((stem, src))
    if a.which in ("outliers", "both"):
        todo.append((f"{stem}-outliers", outlier_checkpoint(src, **OUTLIER_DEFAULTS)))
    for name, ck in todo:
        if a.checkpoint_only:
            print(ck, flush=True)
            continue
        for opset in a.opset or [14, 17]:
            print(export(ck, opset, a.variant, name), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, ValueError) as e:
        log(f"error: {e}")
        sys.exit(2)
    except OSError as e:
        log(f"error: {e.filename or ''}: {e.strerror or e}")
        sys.exit(2)
