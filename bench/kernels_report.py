#!/usr/bin/env python3
"""kernels_report.py RESULTS.jsonl MACHINE REPEATS SECONDS — the markdown of bench/kernels.sh's
section of docs/benchmarks.md from its raw results, with the issue's targets checked."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
machine, repeats, secs = sys.argv[2], sys.argv[3], int(sys.argv[4])
peaks = {r["threads"]: r for r in rows if r["kind"] == "peaks"}
bqc = [r for r in rows if r["kind"] == "bqc"]
blas = [r for r in rows if r["kind"] == "blas"]
ort = [r for r in rows if r["kind"] == "ort"]
e2e = [r for r in rows if r["kind"] == "e2e"]
shapes = []
for r in bqc:
    s = (r["N"], r["K"])
    if s not in shapes:
        shapes.append(s)
formats = []
for r in bqc:
    if r["weight"] not in formats:
        formats.append(r["weight"])
out = []
p = out.append
BPE = {"bfp8/16": 8.5, "bfp6/16": 6.5, "bfp4/16": 4.5, "bfp4/64": 4.125, "mxint8": 8.25, "int4/32": 4.5,
       "mxfp4": 4.25, "nf4/64": 4.5}


def find(lst, **kw):
    return [r for r in lst if all(r.get(k) == v for k, v in kw.items())]


def one(lst, **kw):
    f = find(lst, **kw)
    return f[0] if f else None


p("## Fast quantised matmul kernels (bench/kernels.sh)\n")
p(f"Machine: {machine}. One run of `bash bench/kernels.sh` ({secs // 60} min {secs % 60} s); every figure is "
  f"the median of {repeats} samples taken in turns with its baseline, and the machine was shared with other "
  "jobs while it ran, so compare figures *within* a table row (same run, same moment), not across runs. "
  "Shapes are N x K (outputs x inputs of a Linear). Raw results: build/bench/kernels/results.jsonl.\n")

p("### (a) The machine's limits (`bqc bench --peaks`)\n")
p("| threads | read bandwidth, sum over 1 GiB (GB/s) | int8 VNNI peak, vpdpbusd (GOP/s) | fp32 FMA peak, vfmadd231ps zmm (GFLOP/s) |")
p("|---|---|---|---|")
for t in sorted(peaks):
    r = peaks[t]
    p(f"| {t} | {r['read_gbs']:.1f} | {r['vnni_int8_gops']:.0f} | {r['fma_fp32_gflops']:.0f} |")
p("")
vnni1 = peaks.get(1, {}).get("vnni_int8_gops", 0)

p("### (b) GEMV, cold weights (M = 1)\n")
p("Weights cycled through copies larger than 2x the last-level cache, so every call reads them from "
  "DRAM. *GB/s* is bytes of the weight as the kernel stores it per second; *% bw* is that over the "
  "plain streaming read of the same copies measured in the same run (`bqc bench --cold`). bqc fp32 is "
  "bqc's own packed fp32 kernel (the median over the runs of that shape); OpenBLAS is cblas_sgemv with "
  "`OPENBLAS_CORETYPE=SkylakeX` (its % bw against the 1 GiB read of (a)). nf4/64 runs with fp32 "
  "activations, every other format W+A (activations quantised on the fly into the same format).\n")
p("| shape | kernel | bits/weight | 1 thread GFLOP/s | GB/s | % bw | 2 threads GFLOP/s | GB/s | % bw |")
p("|---|---|---|---|---|---|---|---|---|")
for (n, k) in shapes:
    cells = {}
    for t in (1, 2):
        fr = find(bqc, mode="gemv", N=n, K=k, threads=t)
        if fr:
            cells[("bqc fp32", t)] = (statistics.median(r["fp32_gops"] for r in fr),
                                      statistics.median(r["fp32_weight_gbs"] for r in fr),
                                      statistics.median(r["fp32_bw_fraction"] for r in fr))
        b = one(blas, mode="gemv", N=n, K=k, threads=t)
        if b and t in peaks:
            cells[("OpenBLAS sgemv", t)] = (b["gflops"], b["weight_gbs"], b["weight_gbs"] / peaks[t]["read_gbs"])
        for f in formats:
            r = one(bqc, mode="gemv", N=n, K=k, threads=t, weight=f)
            if r:
                cells[(f, t)] = (r["quant_gops"], r["quant_weight_gbs"], r["quant_bw_fraction"])
    for name in ["bqc fp32", "OpenBLAS sgemv"] + formats:
        if (name, 1) not in cells:
            continue
        bits = "32" if name in ("bqc fp32", "OpenBLAS sgemv") else f"{BPE.get(name, 0):g}"
        line = f"| {n}x{k} | {name} | {bits} |"
        for t in (1, 2):
            c = cells.get((name, t))
            line += f" {c[0]:.1f} | {c[1]:.2f} | {100 * c[2]:.0f}% |" if c else " | | |"
        p(line)
p("")

p("### (b) GEMM, M = 128, 1 thread\n")
p(f"GOP/s (2·M·N·K per second) and, in brackets, % of the 1-thread int8 VNNI peak of (a) ({vnni1:.0f} GOP/s). "
  "Weights warm (one copy).\n")
p("| kernel | " + " | ".join(f"{n}x{k}" for n, k in shapes) + " |")
p("|---|" + "---|" * len(shapes))
line = "| bqc fp32 |"
for (n, k) in shapes:
    fr = find(bqc, mode="gemm", N=n, K=k)
    line += f" {statistics.median(r['fp32_gops'] for r in fr):.0f} |" if fr else " |"
p(line)
line = "| OpenBLAS sgemm (SkylakeX) |"
for (n, k) in shapes:
    b = one(blas, mode="gemm", N=n, K=k)
    line += f" {b['gflops']:.0f} |" if b else " |"
p(line)
for f in formats:
    line = f"| {f} |"
    for (n, k) in shapes:
        r = one(bqc, mode="gemm", N=n, K=k, weight=f)
        line += f" {r['quant_gops']:.0f} ({100 * r['quant_gops'] / vnni1:.0f}%) |" if r and vnni1 else " |"
    p(line)
p("")

if ort:
    p("### (c) ONNX Runtime MatMulNBits, 4-bit (onnxruntime-node 1.30)\n")
    p("One MatMulNBits node per weight copy (fp32 scale per block, no zero points; tools/matmulnbits.py), "
      "graph optimisation \"all\". GEMV: enough copies to exceed 2x the last-level cache, summed; GB/s is "
      "the weight bytes (4 bits + a 4-byte scale per block) per second, % bw against the 1 GiB read of (a) "
      "at the same threads. GEMM: M = 128, 1 thread, one copy.\n")
    p("| shape | block | accuracy_level | GEMV 1 thread GB/s | % bw | GEMV 2 threads GB/s | % bw | GEMM GOP/s |")
    p("|---|---|---|---|---|---|---|---|")
    for (n, k) in shapes:
        for blk in (32, 128):
            for acc in (0, 4):
                line = f"| {n}x{k} | {blk} | {acc} |"
                for t in (1, 2):
                    r = one(ort, mode="gemv", N=n, K=k, block=blk, acc=acc, threads=t)
                    if r and t in peaks:
                        gbs = r["bytes"] * r["copies"] / r["seconds"] * 1e-9
                        line += f" {gbs:.2f} | {100 * gbs / peaks[t]['read_gbs']:.0f}% |"
                    else:
                        line += " | |"
                r = one(ort, mode="gemm", N=n, K=k, block=blk, acc=acc)
                line += f" {2 * 128 * n * k / r['seconds'] * 1e-9:.0f} |" if r else " |"
                p(line)
    p("")

if e2e:
    p("### (d) End to end: opt-1.3b-4l (d = 2048, ffn 8192, 32 heads, 4 layers, vocab 50272)\n")
    p("Exported with past (random weights), 128-token prompt then greedy decode steps; bqc compiles the "
      "export with a W+A plan (`{\"default\": {\"weight\": F, \"input\": F}}`: every Linear including "
      "lm_head, and the attention products) to C and runs its prefill/decode API (bench/decode_bench.c); "
      "onnxruntime-node runs the fp32 export and its MatMulNBits int4 conversion (block 32, "
      "accuracy_level 4, every MatMul/Gemm weight including lm_head). Roofline = bytes of the matmul "
      "weights one token reads / the read bandwidth of (a) at the same threads.\n")
    p("| engine | weights | threads | weight MB/token | roofline ms | decode ms/token | x roofline | prefill 128 ms |")
    p("|---|---|---|---|---|---|---|---|")
    for r in e2e:
        bw = peaks.get(r["threads"], {}).get("read_gbs", 0)
        roof = r["weight_bytes"] / bw * 1e-6 if bw else 0
        name = {"nbits": "MatMulNBits int4/32 acc4"}.get(r["plan"], r["plan"])
        p(f"| {'bqc (C)' if r['engine'] == 'bqc' else 'onnxruntime'} | {name} | {r['threads']} | "
          f"{r['weight_bytes'] / 1e6:.0f} | {roof:.1f} | {r['decode_ms']:.1f} | {r['decode_ms'] / roof:.2f} | "
          f"{r['prefill_ms']:.0f} |")
    p("")

# ---- the targets ----
p("### Targets (issue 5, \"Done when\")\n")
checks = []
for f in ("bfp6/16", "bfp4/16", "int4/32", "mxint8"):
    for (n, k) in ((2048, 8192), (8192, 2048)):
        for t, need in ((1, 0.8), (2, 0.7)):
            r = one(bqc, mode="gemv", N=n, K=k, threads=t, weight=f)
            if r:
                checks.append((f"GEMV cold {f} {n}x{k} {t} thread(s): weight GB/s / read bandwidth >= {need}",
                               f"{r['quant_bw_fraction']:.2f}", r["quant_bw_fraction"] >= need))
for f, need in (("bfp8/16", 200), ("mxint8", 200), ("bfp4/16", 180), ("int4/32", 180)):
    r = one(bqc, mode="gemm", N=2048, K=2048, weight=f)
    if r:
        checks.append((f"GEMM M=128 2048x2048 1 thread {f} >= {need} GOP/s", f"{r['quant_gops']:.0f}",
                       r["quant_gops"] >= need))
for t in (1, 2):
    bw = peaks.get(t, {}).get("read_gbs", 0)
    for f in ("bfp6/16", "bfp4/16"):
        r = one(e2e, engine="bqc", plan=f, threads=t)
        if r and bw:
            x = r["decode_ms"] / (r["weight_bytes"] / bw * 1e-6)
            checks.append((f"decode {f} {t} thread(s) <= 1.25x roofline", f"{x:.2f}x", x <= 1.25))
    b4, nb = one(e2e, engine="bqc", plan="bfp4/16", threads=t), one(e2e, engine="ort", plan="nbits", threads=t)
    if b4 and nb:
        x = nb["decode_ms"] / b4["decode_ms"]
        checks.append((f"decode bfp4/16 vs ORT MatMulNBits int4 acc4, {t} thread(s): >= 1.4x faster", f"{x:.2f}x",
                       x >= 1.4))
    b6, f32 = one(e2e, engine="bqc", plan="bfp6/16", threads=t), one(e2e, engine="ort", plan="fp32", threads=t)
    if b6 and f32:
        x = f32["decode_ms"] / b6["decode_ms"]
        checks.append((f"decode bfp6/16 W6A6 vs ORT fp32, {t} thread(s): >= 3x faster", f"{x:.2f}x", x >= 3))
p("| target | measured | met |")
p("|---|---|---|")
for what, val, ok in checks:
    p(f"| {what} | {val} | {'yes' if ok else '**no**'} |")
print("\n".join(out))
