#!/usr/bin/python3
"""export_opt.py — export an OPT language model (tools/opt_model.py) to ONNX, as HF + optimum would.

    /usr/bin/python3 tools/export_opt.py --preset tiny --opset 14 --with-past -o out/opt.onnx --check

The graph is what torch.onnx (do_constant_folding=True) makes of Hugging Face's OPT code, with
optimum's input/output names: input_ids [batch, seq], attention_mask [batch, seq] (no past) or
[batch, total], past_key_values.N.{key,value} [batch, heads, past, head_dim] -> logits
[batch, seq, vocab], present.N.{key,value} [batch, heads, total, head_dim] (total = past + seq,
written as the dim_param "past + seq" the way optimum writes "past_sequence_length +
sequence_length", so a compiler can see the relation).

--merged builds optimum's merged decoder: one graph whose If node (input use_cache_branch, a
bool [1]) runs either the no-past graph (prefill; presents as outputs) or the with-past graph,
with identical initializers stored once. --external-data moves every initializer of at least
1 KiB into <model>.onnx.data, each at a 64-byte aligned offset (written here, not by onnx's
helper, so the alignment is ours to promise). Next to the model goes <model>.json: the config,
the export options, the input/output signature and the op types, which make_inputs.py and the
tests read. --check runs the ONNX checker and compares PyTorch against onnxruntime
(tools/ort/ortrun.js) on random inputs, for every branch the model has.

Weights are random (every parameter, see opt_model.randomize_all) unless --weights names a
checkpoint from opt_model.save_checkpoint (or a bare state_dict), so a trained model exports
the same way.
"""

import argparse
import collections
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import opt_model  # noqa: E402
from opt_model import OPTConfig, OPTForCausalLM, PRESETS  # noqa: E402
import make_inputs  # noqa: E402
import e2e_check  # noqa: E402

PROG = "export_opt"
OPSETS = (13, 14, 17)
EXTERNAL_MIN_BYTES = 1024   # smaller initializers stay inline (as onnx's own size_threshold)
EXTERNAL_ALIGN = 64         # every external tensor starts at a multiple of this offset
TWO_GB = 2**31 - 1          # protobuf's limit on one serialised message
# Shapes of the example inputs torch traces with. seq > 1 and past > 0 matter: HF's Python
# `if` statements (causal mask only when seq > 1, the past columns only when past > 0) are
# decided at trace time, and real exports trace these branches in.
TRACE_BATCH, TRACE_SEQ, TRACE_PAST = 2, 3, 4


class ExportError(Exception):
    pass


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(what, every=10.0):
    """Print `what`, a heartbeat every `every` seconds while it runs, and its duration."""
    log(f"{what} ...")
    t0 = time.time()
    done = threading.Event()

    def beat():
        while not done.wait(every):
            log(f"  ... still {what} ({time.time() - t0:.0f} s)")
    th = threading.Thread(target=beat, daemon=True)
    th.start()
    try:
        yield
    finally:
        done.set()
        th.join()
    log(f"{what}: done in {time.time() - t0:.1f} s")


# ---------------------------------------------------------------------------------- config

def build_config(args) -> OPTConfig:
    """Preset (default tiny) + overrides; a checkpoint's own config when --weights has one."""
    ckpt_cfg = None
    if args.weights:
        if not os.path.isfile(args.weights):
            raise ExportError(f"--weights {args.weights}: no such file")
        try:
            ckpt_cfg = opt_model.checkpoint_config(args.weights)
        except Exception as e:
            raise ExportError(f"--weights {args.weights}: cannot read: {e}")
    if ckpt_cfg is not None and args.preset is None:
        base = dict(ckpt_cfg)
    else:
        base = dict(PRESETS[args.preset or "tiny"])
    over = {"num_hidden_layers": args.layers, "hidden_size": args.hidden,
            "num_attention_heads": args.heads, "ffn_dim": args.ffn, "vocab_size": args.vocab,
            "max_position_embeddings": args.max_pos, "word_embed_proj_dim": args.word_embed_proj_dim,
            "do_layer_norm_before": args.pre_ln}
    for k, v in over.items():
        if v is not None:
            base[k] = v
    if "word_embed_proj_dim" not in base:
        base["word_embed_proj_dim"] = base["hidden_size"]
    try:
        cfg = OPTConfig.from_dict(base)
    except (ValueError, TypeError) as e:
        raise ExportError(str(e))
    if ckpt_cfg is not None:
        want = OPTConfig.from_dict(dict(ckpt_cfg))
        diff = [f"{k}: checkpoint {getattr(want, k)} vs {getattr(cfg, k)}"
                for k in ("vocab_size", "hidden_size", "num_hidden_layers", "ffn_dim",
                          "max_position_embeddings", "num_attention_heads", "word_embed_proj_dim",
                          "do_layer_norm_before")
                if getattr(want, k) != getattr(cfg, k)]
        if diff:
            raise ExportError(f"--weights {args.weights}: config differs from the requested one: "
                              + "; ".join(diff))
    return cfg


# ---------------------------------------------------------------------------------- export

def io_names(cfg: OPTConfig, with_past: bool, use_cache: bool):
    L = cfg.num_hidden_layers
    kv = [f"{i}.{k}" for i in range(L) for k in ("key", "value")]
    inputs = ["input_ids", "attention_mask"] + ([f"past_key_values.{n}" for n in kv] if with_past else [])
    outputs = ["logits"] + ([f"present.{n}" for n in kv] if use_cache else [])
    return inputs, outputs


def dynamic_axes(cfg: OPTConfig, with_past: bool, use_cache: bool):
    """optimum's axes, named batch/seq/past; the mask and present length is the expression
    "past + seq" (optimum: "past_sequence_length + sequence_length")."""
    inputs, outputs = io_names(cfg, with_past, use_cache)
    mask_len = "past + seq" if with_past else "seq"
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: mask_len},
            "logits": {0: "batch", 1: "seq"}}
    for n in inputs[2:]:
        axes[n] = {0: "batch", 2: "past"}
    for n in outputs[1:]:
        axes[n] = {0: "batch", 2: mask_len}
    return axes


def trace_inputs(cfg: OPTConfig, with_past: bool):
    g = torch.Generator().manual_seed(1234)
    B, S, P = TRACE_BATCH, TRACE_SEQ, TRACE_PAST
    ids = torch.randint(3, cfg.vocab_size, (B, S), generator=g)
    if not with_past:
        return (ids, torch.ones(B, S, dtype=torch.long))
    shape = (B, cfg.num_attention_heads, P, cfg.head_dim)
    pkv = tuple((torch.randn(shape, generator=g), torch.randn(shape, generator=g))
                for _ in range(cfg.num_hidden_layers))
    return (ids, torch.ones(B, P + S, dtype=torch.long), pkv)


def torch_export(model: OPTForCausalLM, opset: int, with_past: bool, use_cache: bool, workdir: str):
    """One torch.onnx export; returns the loaded ModelProto (with its weights in memory)."""
    cfg = model.config
    inputs, outputs = io_names(cfg, with_past, use_cache)
    path = os.path.join(workdir, f"export_{'past' if with_past else 'nopast'}_{int(use_cache)}.onnx")
    model.config.use_cache = use_cache
    what = f"tracing and exporting {'with' if with_past else 'without'} past (opset {opset})"
    with step(what), warnings.catch_warnings(), torch.no_grad():
        # HF's own code triggers these when traced (shape checks as Python bools): expected.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*Constant folding.*")
        torch.onnx.export(model, trace_inputs(cfg, with_past), path, opset_version=opset,
                          do_constant_folding=True, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes(cfg, with_past, use_cache))
    model.config.use_cache = False
    return onnx.load(path)  # external data (torch's own, for > 2 GB) is loaded too


# ---------------------------------------------------------------------------------- merge

def _tensor_key(t: onnx.TensorProto):
    a = numpy_helper.to_array(t)
    return (t.data_type, tuple(t.dims), hashlib.sha256(a.tobytes()).hexdigest())


def _rename_inputs(graph: onnx.GraphProto, mapping: dict):
    """Rename uses of values in `graph` and its subgraphs (uses only: initializers are gone)."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_inputs(attr.g, mapping)
            for sub in attr.graphs:
                _rename_inputs(sub, mapping)


def _value_names(graph: onnx.GraphProto):
    names = {v.name for v in graph.input} | {v.name for v in graph.output}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def merge_decoders(no_past: onnx.ModelProto, with_past: onnx.ModelProto) -> onnx.ModelProto:
    """optimum's merged decoder: If(use_cache_branch) then with_past else no_past.

    Initializers move to the outer graph. Identical tensors (same type, shape and bytes,
    whatever their names, within or across the two graphs) are stored once; two different
    tensors with the same name get distinct names. Each branch's uses are renamed to match."""
    out_a = [o.name for o in no_past.graph.output]
    out_b = [o.name for o in with_past.graph.output]
    if out_a != out_b:
        raise ExportError(f"merge: the two graphs have different outputs: {out_a} vs {out_b}")
    taken = _value_names(no_past.graph) | _value_names(with_past.graph) | {"use_cache_branch"}
    by_key, by_name, merged_inits = {}, {}, []
    renames = ({}, {})
    n_dedup = n_renamed = 0
    for gi, graph in enumerate((no_past.graph, with_past.graph)):
        for t in graph.initializer:
            key = _tensor_key(t)
            if key in by_key:                       # identical data seen before: reuse it
                if by_key[key] != t.name:
                    renames[gi][t.name] = by_key[key]
                n_dedup += 1
                continue
            name = t.name
            if name in by_name:                     # same name, different data: rename
                k = 1
                while f"{t.name}_merged_{k}" in taken:
                    k += 1
                name = f"{t.name}_merged_{k}"
                taken.add(name)
                renames[gi][t.name] = name
                n_renamed += 1
            nt = onnx.TensorProto()
            nt.CopyFrom(t)
            nt.name = name
            by_key[key] = name
            by_name[name] = key
            merged_inits.append(nt)
    log(f"merge: {len(merged_inits)} initializers ({n_dedup} duplicates dropped, {n_renamed} renamed)")

    branches = []
    for gi, (model, label) in enumerate(((no_past, "no_past"), (with_past, "with_past"))):
        g = onnx.GraphProto()
        g.CopyFrom(model.graph)
        del g.initializer[:]
        _rename_inputs(g, renames[gi])
        branch = onnx.helper.make_graph(nodes=list(g.node), name=label, inputs=[],
                                        outputs=list(g.output), initializer=[],
                                        value_info=list(g.value_info))
        branches.append(branch)

    use_cache_branch = onnx.helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1])
    if_node = onnx.helper.make_node("If", inputs=["use_cache_branch"], outputs=out_b,
                                    name="optimum::if", then_branch=branches[1],
                                    else_branch=branches[0])
    graph = onnx.helper.make_graph(nodes=[if_node], name=with_past.graph.name or "merged",
                                   inputs=list(with_past.graph.input) + [use_cache_branch],
                                   outputs=list(with_past.graph.output), initializer=merged_inits)
    merged = onnx.helper.make_model(graph, opset_imports=list(with_past.opset_import),
                                    producer_name=with_past.producer_name,
                                    producer_version=with_past.producer_version)
    merged.ir_version = with_past.ir_version
    return merged


# ---------------------------------------------------------------------------------- saving

def save_external(model: onnx.ModelProto, path: str):
    """Write `path` and `path`.data: initializers >= EXTERNAL_MIN_BYTES go to the data file at
    offsets that are multiples of EXTERNAL_ALIGN (zero padding between)."""
    data_name = os.path.basename(path) + ".data"
    data_path = path + ".data"
    offset = moved = 0
    with open(data_path, "wb") as f:
        for t in model.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise ExportError(f"initializer {t.name} is already external")
            a = numpy_helper.to_array(t)
            raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            if len(raw) < EXTERNAL_MIN_BYTES:
                continue
            pad = (-offset) % EXTERNAL_ALIGN
            f.write(b"\0" * pad)
            offset += pad
            f.write(raw)
            dims, dtype, name = list(t.dims), t.data_type, t.name
            t.Clear()
            t.name, t.data_type = name, dtype
            t.dims.extend(dims)
            t.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                e = t.external_data.add()
                e.key, e.value = k, v
            offset += len(raw)
            moved += 1
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    log(f"external data: {moved} tensors, {offset / 1e6:.1f} MB in {data_name} (64-byte aligned)")


def save_model(model: onnx.ModelProto, path: str, external: bool):
    for stale in (path + ".data",):
        if os.path.exists(stale) and not external:
            os.remove(stale)
    if external:
        save_external(model, path)
        return
    size = model.ByteSize()
    if size > TWO_GB:
        raise ExportError(f"the model is {size / 2**30:.2f} GiB; a single ONNX file is limited to 2 GiB: "
                          f"use --external-data")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def graph_op_types(graph: onnx.GraphProto, acc=None):
    acc = collections.Counter() if acc is None else acc
    for node in graph.node:
        acc[node.op_type if not node.domain or node.domain == "ai.onnx" else f"{node.domain}.{node.op_type}"] += 1
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                graph_op_types(attr.g, acc)
    return acc


def value_sig(v: onnx.ValueInfoProto):
    tt = v.type.tensor_type
    dims = [d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim]
    return {"name": v.name, "dtype": np.dtype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tt.elem_type]).name, "shape": dims}


def sidecar_path(path: str) -> str:
    return (path[:-5] if path.endswith(".onnx") else path) + ".json"


# ---------------------------------------------------------------------------------- check

def torch_outputs(model: OPTForCausalLM, feeds: dict, with_past: bool, want_presents: bool):
    """Run the PyTorch model on the .npy-style feeds; outputs keyed by ONNX output name."""
    cfg = model.config
    ids = torch.from_numpy(feeds["input_ids"])
    mask = torch.from_numpy(feeds["attention_mask"])
    pkv = None
    if with_past:
        pkv = tuple((torch.from_numpy(feeds[f"past_key_values.{i}.key"]),
                     torch.from_numpy(feeds[f"past_key_values.{i}.value"]))
                    for i in range(cfg.num_hidden_layers))
    with torch.no_grad():
        res = model(ids, mask, past_key_values=pkv, use_cache=want_presents)
    out = {"logits": res[0].numpy()}
    if want_presents:
        for i, (k, v) in enumerate(res[1]):
            out[f"present.{i}.key"] = k.numpy()
            out[f"present.{i}.value"] = v.numpy()
    return out


def run_ort(model_path: str, feeds: dict, workdir: str, tag: str):
    in_dir = os.path.join(workdir, f"{tag}-in")
    out_dir = os.path.join(workdir, f"{tag}-ort")
    make_inputs.write_inputs(in_dir, feeds)
    e2e_check.run_ort(model_path, in_dir, out_dir)
    return e2e_check.load_dir(out_dir)


def self_check(model: OPTForCausalLM, path: str, sig: dict, variant: str, workdir: str) -> bool:
    with step("checking with onnx.checker"):
        try:
            onnx.checker.check_model(path)   # by path: handles external data and > 2 GiB
        except onnx.checker.ValidationError as e:
            log(f"onnx.checker: {e}")
            return False
    cases = []  # (label, make_inputs kwargs, torch with_past, presents)
    if variant == "plain":
        cases.append(("batch 2, seq 5, left pad 2", dict(batch=2, seq=5, left_pad=2), False, False))
    elif variant == "with-past":
        cases.append(("batch 2, past 0, seq 5, left pad 2", dict(batch=2, seq=5, past=0, left_pad=2), True, True))
        cases.append(("batch 2, past 4, seq 3, left pad 2", dict(batch=2, seq=3, past=4, left_pad=2), True, True))
    else:
        cases.append(("use_cache_branch false, batch 2, seq 5, left pad 2",
                      dict(batch=2, seq=5, past=0, left_pad=2, use_cache_branch=False), False, True))
        cases.append(("use_cache_branch true, batch 2, past 4, seq 3, left pad 2",
                      dict(batch=2, seq=3, past=4, left_pad=2, use_cache_branch=True), True, True))
    ok = True
    for n, (label, kw, with_past, presents) in enumerate(cases):
        feeds = make_inputs.make_inputs(sig, seed=100 + n, **kw)
        with step(f"comparing PyTorch and onnxruntime ({label})"):
            ref = torch_outputs(model, feeds, with_past, presents)
            got = run_ort(path, feeds, workdir, f"case{n}")
            good, lines = e2e_check.compare_brief(ref, got, "torch", "onnxruntime")
        for line in lines:
            print(f"  {line}", flush=True)
        ok &= good
    return ok


# ---------------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(prog="export_opt.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), help="model dimensions (default: tiny)")
    p.add_argument("--layers", type=int, help="num_hidden_layers")
    p.add_argument("--hidden", type=int, help="hidden_size")
    p.add_argument("--heads", type=int, help="num_attention_heads")
    p.add_argument("--ffn", type=int, help="ffn_dim")
    p.add_argument("--vocab", type=int, help="vocab_size")
    p.add_argument("--max-pos", type=int, help="max_position_embeddings")
    p.add_argument("--word-embed-proj-dim", type=int,
                   help="word_embed_proj_dim (project_in/project_out when != hidden)")
    ln = p.add_mutually_exclusive_group()
    ln.add_argument("--pre-ln", dest="pre_ln", action="store_true", default=None,
                    help="LayerNorm before attention/FFN (do_layer_norm_before, OPT-125m)")
    ln.add_argument("--post-ln", dest="pre_ln", action="store_false",
                    help="LayerNorm after the residual add (OPT-350m)")
    p.add_argument("--opset", type=int, choices=OPSETS, default=14)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--with-past", action="store_true",
                      help="past_key_values inputs and present outputs (decoder_with_past)")
    kind.add_argument("--merged", action="store_true",
                      help="optimum's merged decoder: If(use_cache_branch) over no-past/with-past")
    p.add_argument("--external-data", action="store_true",
                   help="weights in <model>.onnx.data, 64-byte aligned")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    p.add_argument("--weights", metavar="PATH", help="checkpoint/state_dict to load instead of random weights")
    p.add_argument("--check", action="store_true",
                   help="run the ONNX checker and compare PyTorch vs onnxruntime on random inputs")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    a = p.parse_args(argv)
    for name in ("layers", "hidden", "heads", "ffn", "vocab", "max_pos", "word_embed_proj_dim"):
        v = getattr(a, name)
        if v is not None and v <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return a


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cfg = build_config(args)
    variant = "merged" if args.merged else "with-past" if args.with_past else "plain"
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    with step(f"building OPT ({cfg.num_hidden_layers} layers, d {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
              f"ffn {cfg.ffn_dim}, vocab {cfg.vocab_size}, {'pre' if cfg.do_layer_norm_before else 'post'}-LN"
              f"{', proj ' + str(cfg.word_embed_proj_dim) if cfg.word_embed_proj_dim != cfg.hidden_size else ''})"):
        model = OPTForCausalLM(cfg).eval()
        if args.weights:
            try:
                opt_model.load_weights(model, args.weights)
            except ValueError as e:
                raise ExportError(str(e))
        else:
            opt_model.randomize_all(model, args.seed)
    log(f"{opt_model.num_parameters(model) / 1e6:.2f} M parameters, "
        f"{'weights ' + args.weights if args.weights else f'random weights (seed {args.seed})'}")

    with tempfile.TemporaryDirectory(prefix="export_opt.") as work:
        if variant == "plain":
            proto = torch_export(model, args.opset, with_past=False, use_cache=False, workdir=work)
        elif variant == "with-past":
            proto = torch_export(model, args.opset, with_past=True, use_cache=True, workdir=work)
        else:
            a = torch_export(model, args.opset, with_past=False, use_cache=True, workdir=work)
            b = torch_export(model, args.opset, with_past=True, use_cache=True, workdir=work)
            with step("merging the two graphs under an If node"):
                proto = merge_decoders(a, b)
            del a, b
        ops = graph_op_types(proto.graph)
        sig = {"inputs": [value_sig(v) for v in proto.graph.input],
               "outputs": [value_sig(v) for v in proto.graph.output]}
        with step(f"writing {args.output}"):
            save_model(proto, out, args.external_data)
        del proto

    meta = {
        "generator": "tools/export_opt.py",
        "model": os.path.basename(out),
        "preset": args.preset or ("tiny" if not args.weights else None),
        "config": cfg.to_dict(),
        "head_dim": cfg.head_dim,
        "opset": args.opset,
        "variant": variant,
        "with_past": variant != "plain",
        "merged": variant == "merged",
        "external_data": (os.path.basename(out) + ".data") if args.external_data else None,
        "seed": None if args.weights else args.seed,
        "weights": os.path.abspath(args.weights) if args.weights else None,
        "inputs": sig["inputs"],
        "outputs": sig["outputs"],
        "op_types": dict(sorted(ops.items())),
    }
    with open(sidecar_path(out), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    size = os.path.getsize(out) + (os.path.getsize(out + ".data") if args.external_data else 0)
    log(f"wrote {args.output} ({size / 1e6:.1f} MB) and {os.path.basename(sidecar_path(out))} "
        f"in {time.time() - t_start:.1f} s; op types: {', '.join(sorted(ops))}")

    if args.check:
        with tempfile.TemporaryDirectory(prefix="export_opt.check.") as work:
            if not self_check(model, out, meta, variant, work):
                log("check FAILED: PyTorch and onnxruntime disagree (or the checker failed)")
                return 1
        log("check passed: onnx.checker OK, PyTorch and onnxruntime agree")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ExportError, e2e_check.CheckError, make_inputs.InputError) as e:
        log(f"error: {e}")
        sys.exit(2)
    except OSError as e:
        log(f"error: {e.filename or ''}: {e.strerror or e}")
        sys.exit(2)
