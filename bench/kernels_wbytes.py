#!/usr/bin/env python3
"""kernels_wbytes.py MODEL.onnx FORMAT — bytes of the matmul weights one decode step reads (every
MatMul/Gemm with a constant 2-D weight, lm_head included, at FORMAT's bits per element, plus
fp32 biases): the numerator of bench/kernels.sh's decode roofline. FORMAT: fp32, bfp<w>/<B>,
int4/<B> (ORT MatMulNBits as tools/matmulnbits.py writes it: 4 bits + an fp32 scale per block)."""
import re
import sys

import onnx
from onnx import numpy_helper  # noqa: F401  (onnx.load needs the helpers importable)


def bpe(fmt):
    if fmt == "fp32":
        return 32.0
    m = re.fullmatch(r"bfp(\d)/(\d+)", fmt)
    if m:
        return int(m[1]) + 8 / int(m[2])
    m = re.fullmatch(r"int4/(\d+)", fmt)
    if m:
        return 4 + 32 / int(m[1])
    raise SystemExit(f"kernels_wbytes: unknown format {fmt}")


def main():
    m = onnx.load(sys.argv[1], load_external_data=False)
    b = bpe(sys.argv[2])
    dims = {i.name: list(i.dims) for i in m.graph.initializer}
    total = 0.0
    for n in m.graph.node:
        if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2 or len(dims.get(n.input[1], [])) != 2:
            continue
        d = dims[n.input[1]]
        total += d[0] * d[1] * b / 8
        if n.op_type == "Gemm" and len(n.input) > 2 and n.input[2] in dims:
            total += 4 * max(dims[n.input[2]])
    print(int(total))


if __name__ == "__main__":
    main()
