#!/usr/bin/python3
"""make_outliers.py — a functionally identical copy of a pre-LN OPT checkpoint with outlier channels.

    /usr/bin/python3 tools/make_outliers.py models/opt-wt2.pt -o build/models/opt-wt2-outliers.pt

Large OPTs (6.7B and up) have a few hidden channels whose activations are 20-100x larger than
the rest (Dettmers et al., LLM.int8(); Xiao et al., SmoothQuant), in the same channels in every
layer. They are what breaks per-tensor activation quantisation and what block formats with a
shared exponent per block have to survive. A small trained model has none, so this tool plants
them without changing what the model computes:

In each decoder layer, for the chosen channels c, the LayerNorm's gamma[c] and beta[c] are
multiplied by alpha, so that LayerNorm's output channel c is alpha times larger, and the
matching input column c of every Linear that consumes that output (torch weight [out, in],
so weight[:, c]) is divided by alpha:

    self_attn_layer_norm  ->  q_proj, k_proj, v_proj
    final_layer_norm      ->  fc1          (the layer's own, before the FFN)

In a pre-LN layer those Linears are the LayerNorm's only consumers (the residual stream takes
the LayerNorm's input, not its output), so logits are unchanged up to fp32 rounding (~1e-6
relative). Post-LN models are refused: their LayerNorm output is the residual stream. The
decoder's final LayerNorm is left alone: it feeds lm_head, which is tied to embed_tokens, so
its columns cannot be rescaled without untying the head.

The channels: `--channels K` (default 6) distinct hidden channels drawn with
torch.randperm(hidden, generator seeded with --seed), sorted; by default the same set in every
layer and for both LayerNorms, as in real OPTs, whose outliers sit in a few fixed dimensions of
the residual stream; --per-layer draws a fresh set for each layer instead. The chosen channels,
alpha and the source checkpoint's sha256 are stored in the checkpoint under 'outliers'.

It then measures, on the first --sample-windows windows of --text (default test.txt), the max
|activation| of the chosen channels of each LayerNorm output (the matmul inputs) against the max
over the other channels, for the original and the copy, and the logits' max difference.
"""

import argparse
import copy
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import bytevocab  # noqa: E402
import opt_model  # noqa: E402
from opt_model import OPTConfig, OPTForCausalLM  # noqa: E402

PROG = "make_outliers"
DEFAULT_TEXT = "/work/shared/data/wikitext-2/test.txt"
# LayerNorm of a decoder layer -> the Linears that read its output (pre-LN only).
CONSUMERS = {"self_attn_layer_norm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
             "final_layer_norm": ("fc1",)}


class OutlierError(Exception):
    pass


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def load(path: str) -> OPTForCausalLM:
    cfg = opt_model.checkpoint_config(path)
    if cfg is None:
        raise OutlierError(f"{path}: a bare state_dict has no config; use a save_checkpoint() file")
    model = OPTForCausalLM(OPTConfig.from_dict(cfg))
    opt_model.load_weights(model, path)
    return model.eval()


def choose_channels(hidden: int, layers: int, k: int, seed: int, per_layer: bool = False):
    """The outlier channels of each layer: sorted lists of k distinct ints in [0, hidden)."""
    if not 0 < k < hidden:
        raise OutlierError(f"--channels must be in 1..{hidden - 1} (got {k})")
    g = torch.Generator().manual_seed(seed)
    if not per_layer:
        chosen = sorted(torch.randperm(hidden, generator=g)[:k].tolist())
        return [list(chosen) for _ in range(layers)]
    return [sorted(torch.randperm(hidden, generator=g)[:k].tolist()) for _ in range(layers)]


def apply_outliers(model: OPTForCausalLM, channels, alpha: float):
    """Scale LayerNorm gamma/beta of `channels[layer]` by alpha and the consumers' input
    columns by 1/alpha, in place."""
    cfg = model.config
    if not cfg.do_layer_norm_before:
        raise OutlierError("the model is post-LN (do_layer_norm_before false): its LayerNorm outputs "
                           "feed the residual stream, so rescaling them would change the model")
    if not cfg.layer_norm_elementwise_affine:
        raise OutlierError("the LayerNorms have no gamma/beta (layer_norm_elementwise_affine false)")
    if not alpha > 0:
        raise OutlierError(f"--alpha must be positive (got {alpha})")
    with torch.no_grad():
        for layer, chans in zip(model.model.decoder.layers, channels):
            idx = torch.tensor(chans, dtype=torch.long)
            for ln_name, consumers in CONSUMERS.items():
                ln = getattr(layer, ln_name)
                ln.weight[idx] *= alpha
                ln.bias[idx] *= alpha
                for name in consumers:
                    lin = layer.get_submodule(name)
                    lin.weight[:, idx] /= alpha


def sample_ids(path: str, ctx: int, windows: int) -> torch.Tensor:
    """The first `windows` full windows of `ctx` bytes of the text file, [windows, ctx]."""
    ids = bytevocab.read_ids(path)
    n = min(windows, len(ids) // ctx)
    if n < 1:
        raise OutlierError(f"{path}: shorter than one window of {ctx} bytes")
    return torch.tensor(ids[:n * ctx], dtype=torch.long).view(n, ctx)


def activation_stats(model: OPTForCausalLM, ids: torch.Tensor, channels):
    """Logits, and per (layer, LayerNorm name): (max |x| over the chosen channels, max |x| over
    the other channels, median over the other channels of their max |x|) of that LayerNorm's
    output on `ids`. The first two give the ratio the tests check; the third is a typical
    channel's peak, what "20-100x the rest" compares with in the papers."""
    stats, hooks = {}, []
    for i, layer in enumerate(model.model.decoder.layers):
        mask = torch.zeros(model.config.hidden_size, dtype=torch.bool)
        mask[channels[i]] = True
        for ln_name in CONSUMERS:
            def hook(_mod, _inp, out, key=(i, ln_name), m=mask):
                peak = out.detach().abs().reshape(-1, out.shape[-1]).amax(0)   # per channel
                stats[key] = (peak[m].max().item(), peak[~m].max().item(), peak[~m].median().item())
            hooks.append(getattr(layer, ln_name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(ids, torch.ones_like(ids))[0]
    finally:
        for h in hooks:
            h.remove()
    return logits, stats


def min_ratio(stats) -> float:
    return min(s[0] / s[1] for s in stats.values())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make(src: str, out: str, alpha=40.0, k=6, seed=0, per_layer=False,
         text=DEFAULT_TEXT, windows=4, report=True):
    """Write the outlier copy of checkpoint `src` to `out`; return (max rel logit diff, min
    outlier ratio of the copy)."""
    model = load(src)
    cfg = model.config
    channels = choose_channels(cfg.hidden_size, cfg.num_hidden_layers, k, seed, per_layer)
    copy_ = copy.deepcopy(model)
    apply_outliers(copy_, channels, alpha)
    copy_.tie_weights()

    ids = sample_ids(text, cfg.max_position_embeddings, windows)
    ref, st0 = activation_stats(model, ids, channels)
    got, st1 = activation_stats(copy_, ids, channels)
    rel = ((got - ref).abs().max() / ref.abs().max()).item()
    if report:
        log(f"{src}: {cfg.num_hidden_layers} layers, alpha {alpha:g}, seed {seed}, channels "
            + (f"{channels[0]} in every layer" if not per_layer else
               "; ".join(f"layer {i}: {c}" for i, c in enumerate(channels))))
        log(f"max |activation| of the LayerNorm outputs on {ids.shape[0]} x {ids.shape[1]} bytes of "
            f"{os.path.basename(text)}: chosen channels / the other channels "
            f"(and / the median channel's max)")
        for (i, ln_name), (a1, b1, c1) in st1.items():   # forward order
            a0, b0, c0 = st0[(i, ln_name)]
            log(f"  layer {i} {ln_name:20s} original {a0:5.2f} / {b0:5.2f} = {a0 / b0:4.2f}x ({a0 / c0:4.2f}x)"
                f"   outliers {a1:6.2f} / {b1:5.2f} = {a1 / b1:5.2f}x ({a1 / c1:5.1f}x)")
        log(f"smallest ratio: original {min_ratio(st0):.2f}x, outlier copy {min_ratio(st1):.2f}x")
        log(f"logits: max |copy - original| / max |original| = {rel:.2e}")

    meta = {"alpha": alpha, "seed": seed, "per_layer": per_layer, "channels": channels,
            "consumers": {k_: list(v) for k_, v in CONSUMERS.items()},
            "source": os.path.basename(src), "source_sha256": sha256_file(src),
            "min_ratio": round(min_ratio(st1), 3), "logits_max_rel_diff": rel}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    opt_model.save_checkpoint(copy_, out, outliers=meta)
    if report:
        log(f"wrote {out}")
    return rel, min_ratio(st1)


def main(argv=None):
    p = argparse.ArgumentParser(prog="make_outliers.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="pre-LN checkpoint from opt_model.save_checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUT.pt")
    p.add_argument("--alpha", type=float, default=40.0, help="outlier scale (default 40)")
    p.add_argument("--channels", type=int, default=6, help="outlier channels per layer (default 6)")
    p.add_argument("--seed", type=int, default=0, help="channel choice seed (default 0)")
    p.add_argument("--per-layer", action="store_true", help="another channel set in every layer")
    p.add_argument("--text", default=DEFAULT_TEXT, help="text to measure activations on")
    p.add_argument("--sample-windows", type=int, default=4, help="windows of that text (default 4)")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    make(a.checkpoint, a.output, a.alpha, a.channels, a.seed, a.per_layer, a.text, a.sample_windows)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OutlierError, ValueError) as e:
        log(f"error: {e}")
        sys.exit(2)
    except OSError as e:
        log(f"error: {e.filename or ''}: {e.strerror or e}")
        sys.exit(2)
