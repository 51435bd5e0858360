#!/usr/bin/env python3
"""matmulnbits.py — ONNX Runtime's 4-bit MatMulNBits (com.microsoft) models for bench/kernels.sh.

  matmulnbits.py single -m M -n N -k K --block 32 --acc 4 [--copies C] -o model.onnx
      Y = Sum_c A · W_cᵀ: C copies of one MatMulNBits node (each its own initializer, the same
      random values, so C copies larger than the last-level cache make every call read the
      weights from DRAM), their outputs summed into Y [M, N]. Input A [M, K] float32.
  matmulnbits.py convert IN.onnx OUT.onnx --block 32 --acc 4
      Every MatMul with a constant [K, N] weight and every Gemm with a constant weight (transB
      0 or 1, bias added after) of an exported OPT model becomes MatMulNBits on the same
      weights quantised to 4 bits; everything else is unchanged.

No onnxruntime Python package is available here, so the quantisation is written with numpy:
symmetric 4-bit per block of `block` consecutive K of one output n, scale = absmax / 7 (fp32),
q = clip(round(w / scale), -8, 7) + 8 stored as uint8 nibbles (element 2j low nibble), no
zero_points input (MatMulNBits then subtracts 8). B is [N, K/block, block/2] uint8, scales
[N * K/block] float32 — the layout MatMulNBits documents (contrib_defs, 4 bits). Speed, not
accuracy, is what these models measure; the bits per weight are 4 + 32/block.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def quantise(w_nk, block):
    """w [N, K] float32 -> (B uint8 [N, K/block, block/2], scales float32 [N*K/block])."""
    n, k = w_nk.shape
    if k % block:
        raise SystemExit(f"matmulnbits: K={k} is not a multiple of the block {block}")
    wb = w_nk.reshape(n, k // block, block).astype(np.float32)
    amax = np.abs(wb).max(axis=2)
    scale = (amax / 7.0).astype(np.float32)
    inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1), 0).astype(np.float32)
    q = np.clip(np.rint(wb * inv[:, :, None]), -8, 7).astype(np.int16) + 8
    q = q.astype(np.uint8)
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1)


def nbits_node(name, a, out, w_nk, block, acc, inits, q=None):
    n, k = w_nk.shape
    b, s = q if q is not None else quantise(w_nk, block)
    inits.append(numpy_helper.from_array(b, f"{name}_B"))
    inits.append(numpy_helper.from_array(s, f"{name}_scales"))
    return helper.make_node("MatMulNBits", [a, f"{name}_B", f"{name}_scales"], [out], name=name,
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=block, accuracy_level=acc)


def single(args):
    rng = np.random.default_rng(1)
    inits, nodes, outs = [], [], []
    w = (rng.standard_normal((args.n, args.k), dtype=np.float32) * 0.05).astype(np.float32)
    q = quantise(w, args.block)   # the copies hold the same values in separate initializers
    for c in range(args.copies):
        nodes.append(nbits_node(f"mm{c}", "A", f"Y{c}", w, args.block, args.acc, inits, q))
        outs.append(f"Y{c}")
    if args.copies == 1:
        nodes[0].output[0] = "Y"
    else:
        nodes.append(helper.make_node("Sum", outs, ["Y"], name="sum"))
    g = helper.make_graph(nodes, "matmulnbits",
                          [helper.make_tensor_value_info("A", TensorProto.FLOAT, [args.m, args.k])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [args.m, args.n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.save(m, args.o)


def convert(args):
    m = onnx.load(args.input)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, new_inits, used, nconv = [], [], set(), 0
    for node in g.node:
        wname = node.input[1] if len(node.input) > 1 else None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = wname in inits and len(inits[wname].dims) == 2
        if node.op_type == "Gemm":
            ok = ok and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type not in ("MatMul", "Gemm") or not ok:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[wname]).astype(np.float32)
        w_nk = w if node.op_type == "Gemm" and attrs.get("transB", 0) else w.T
        if w_nk.shape[1] % args.block:
            new_nodes.append(node)
            continue
        name = (node.name or f"mm{nconv}").replace("/", "_").strip("_") + "_nbits"
        has_bias = node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]
        out = node.output[0] + "_nobias" if has_bias else node.output[0]
        new_nodes.append(nbits_node(name, node.input[0], out, np.ascontiguousarray(w_nk), args.block, args.acc,
                                    new_inits))
        if has_bias:
            new_nodes.append(helper.make_node("Add", [out, node.input[2]], [node.output[0]], name=name + "_bias"))
        used.add(wname)
        nconv += 1
    keep = [i for i in g.initializer if i.name not in used or any(i.name in n.input for n in new_nodes)]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    if not any(o.domain == "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, args.output)
    print(f"matmulnbits: {nconv} MatMul/Gemm -> MatMulNBits (4 bits, block {args.block}, accuracy_level {args.acc})",
          file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("single")
    for f in ("-m", "-n", "-k"):
        s.add_argument(f, type=int, required=True)
    s.add_argument("--copies", type=int, default=1)
    s.add_argument("-o", required=True)
    c = sub.add_parser("convert")
    c.add_argument("input")
    c.add_argument("output")
    for q in (s, c):
        q.add_argument("--block", type=int, default=32, choices=[16, 32, 64, 128, 256])
        q.add_argument("--acc", type=int, default=4, choices=[0, 1, 2, 3, 4])
    args = p.parse_args()
    single(args) if args.cmd == "single" else convert(args)


if __name__ == "__main__":
    main()
