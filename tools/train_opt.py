#!/usr/bin/python3
"""train_opt.py — train a small OPT (tools/opt_model.py) on WikiText-2 with bqc's byte vocabulary.

    /usr/bin/python3 tools/train_opt.py -o models/opt-wt2.pt          # ~14 min on 2 idle cores
    /usr/bin/python3 tools/train_opt.py --eval models/opt-wt2.pt      # test perplexity only

bqc's accuracy numbers (perplexity of a quantisation plan vs fp32) mean little on random
weights: their activations have none of the structure quantisation has to cope with. This
trains a model with OPT-125m's architecture (pre-LN, ReLU FFN, learned positions with offset 2,
tied lm_head) at a size two CPU cores train in minutes: 4 layers, d 256, 4 heads of 64, FFN
1024, context 256, vocabulary 260 (tools/bytevocab.py: byte b = id b + 4).

Data: /work/shared/data/wikitext-2/valid.txt (the train split is not available here) as one
byte stream; each step takes `batch` windows of `ctx` bytes at random offsets (a seeded
generator) and minimises the model's own `labels` loss (next-byte cross-entropy). AdamW
(betas 0.9/0.95, weight decay on matrices only), linear warmup then cosine decay to 10% of the
peak, gradient clipping at 1. Dropout is off: the run sees valid.txt only about twice.

Evaluation: test.txt in non-overlapping windows of ctx bytes (bytevocab.eval_windows: the first
byte of each window is context only), perplexity = exp(mean NLL) and bits per byte = mean NLL /
ln 2, against a unigram byte model fitted on valid.txt (add-one smoothing over the 256 bytes)
scored on exactly the same positions. The checkpoint (opt_model.save_checkpoint, fp32) goes to
-o and its provenance (command, seed, config, timings, losses, perplexities, hashes) to the .json
next to it.
"""

import argparse
import hashlib
import json
import math
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bytevocab  # noqa: E402
import opt_model  # noqa: E402
from opt_model import OPTConfig, OPTForCausalLM  # noqa: E402

PROG = "train_opt"
DATA_DIR = "/work/shared/data/wikitext-2"
# The committed model: OPT-125m's shape, scaled down (see the top of the file).
MODEL = dict(vocab_size=bytevocab.VOCAB_SIZE, hidden_size=256, num_hidden_layers=4,
             num_attention_heads=4, ffn_dim=1024, max_position_embeddings=256,
             do_layer_norm_before=True, dropout=0.0, attention_dropout=0.0)


def log(msg):
    print(f"{PROG}: {msg}", flush=True)


def fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------- evaluation

def window_nll(logits_fn, ids, ctx: int, batch: int = 16, limit=None, progress=None):
    """(total NLL in nats, scored tokens) over the perplexity windows of `ids` (a 1-D int64
    tensor), the model given by `logits_fn(ids [B, n]) -> logits [B, n, V]`. Windows of equal
    length are batched; `limit` keeps only the first `limit` windows; `progress(done, total)`
    is called about every 15 s."""
    wins = bytevocab.eval_windows(len(ids), ctx)[:limit]
    total, count = 0.0, 0
    i = 0
    last = time.time()
    while i < len(wins):
        n = wins[i][1]
        group = [w for w in wins[i:i + batch] if w[1] == n]
        x = torch.stack([ids[s:s + n] for s, _ in group])
        with torch.no_grad():
            logits = logits_fn(x).double()
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                              reduction="sum")
        total += nll.item()
        count += x[:, 1:].numel()
        i += len(group)
        if progress and (time.time() - last >= 15 or i == len(wins)):
            last = time.time()
            progress(i, len(wins))
    return total, count


def model_logits_fn(model: OPTForCausalLM):
    return lambda x: model(x, torch.ones_like(x))[0]


def unigram_logprobs(ids) -> torch.Tensor:
    """log p(id) of a unigram byte model fitted on `ids`: add-one smoothing over the 256 byte
    ids, specials impossible (-inf)."""
    counts = torch.bincount(torch.as_tensor(ids) - bytevocab.BYTE_OFFSET, minlength=256).double() + 1
    lp = torch.full((bytevocab.VOCAB_SIZE,), -math.inf, dtype=torch.float64)
    lp[bytevocab.BYTE_OFFSET:] = torch.log(counts / counts.sum())
    return lp


def unigram_logits_fn(lp: torch.Tensor):
    return lambda x: lp.expand(*x.shape, lp.numel())


def evaluate(model, test_ids, train_ids, ctx, limit=None):
    """Test perplexity / bits per byte of the model and of the unigram baseline."""
    model.eval()
    t0 = time.time()

    def progress(done, total):
        el = time.time() - t0
        log(f"eval: {done}/{total} windows  elapsed {fmt_time(el)}  ETA {fmt_time(el / done * (total - done))}")
    nll, n = window_nll(model_logits_fn(model), test_ids, ctx, limit=limit, progress=progress)
    u_nll, u_n = window_nll(unigram_logits_fn(unigram_logprobs(train_ids)), test_ids, ctx, limit=limit)
    assert n == u_n
    return {"test_tokens_scored": n,
            "test_nll": nll / n,
            "test_perplexity": bytevocab.ppl_from_nll(nll, n),
            "test_bits_per_byte": bytevocab.bits_per_byte(nll, n),
            "unigram_perplexity": bytevocab.ppl_from_nll(u_nll, n),
            "unigram_bits_per_byte": bytevocab.bits_per_byte(u_nll, n)}


def print_eval(r):
    log(f"test.txt: {r['test_tokens_scored']} bytes scored; model perplexity {r['test_perplexity']:.3f} "
        f"({r['test_bits_per_byte']:.3f} bits/byte); unigram byte model (from valid.txt) "
        f"{r['unigram_perplexity']:.3f} ({r['unigram_bits_per_byte']:.3f} bits/byte)")


# ---------------------------------------------------------------------------------- training

def lr_at(step: int, args) -> float:
    """Linear warmup to --lr over --warmup steps, then cosine to --lr * --min-lr-ratio."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model, args):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=args.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)


def train(model, train_ids, args):
    """The training loop; returns (final train loss = mean of the last 50 steps, losses)."""
    g = torch.Generator().manual_seed(args.seed + 1)
    opt = make_optimizer(model, args)
    n_start = len(train_ids) - args.ctx + 1
    offs = torch.arange(args.ctx)
    losses = []
    tokens_per_step = args.batch * args.ctx
    t0 = time.time()
    last_print = t0
    model.train()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        starts = torch.randint(0, n_start, (args.batch,), generator=g)
        x = train_ids[starts[:, None] + offs]
        loss, _ = model(x, labels=x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        now = time.time()
        if step + 1 == args.steps or step < 3 or now - last_print >= args.print_every:
            last_print = now
            el = now - t0
            recent = losses[-20:]
            log(f"step {step + 1}/{args.steps}  loss {losses[-1]:.4f} (last {len(recent)}: "
                f"{sum(recent) / len(recent):.4f})  lr {lr_at(step, args):.2e}  "
                f"{tokens_per_step * (step + 1) / el:.0f} tok/s  elapsed {fmt_time(el)}  "
                f"ETA {fmt_time(el / (step + 1) * (args.steps - step - 1))}")
    tail = losses[-50:]
    return sum(tail) / len(tail), losses


# ---------------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(prog="train_opt.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", metavar="CKPT.pt", help="checkpoint to write (and CKPT.json)")
    p.add_argument("--eval", metavar="CKPT.pt", help="only evaluate this checkpoint on test.txt")
    p.add_argument("--eval-windows", type=int, metavar="N", help="evaluate on the first N windows only")
    p.add_argument("--train-data", default=f"{DATA_DIR}/valid.txt")
    p.add_argument("--test-data", default=f"{DATA_DIR}/test.txt")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=16, help="windows per step")
    p.add_argument("--ctx", type=int, default=MODEL["max_position_embeddings"], help="window length")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layers", type=int, default=MODEL["num_hidden_layers"])
    p.add_argument("--hidden", type=int, default=MODEL["hidden_size"])
    p.add_argument("--heads", type=int, default=MODEL["num_attention_heads"])
    p.add_argument("--ffn", type=int, default=MODEL["ffn_dim"])
    p.add_argument("--print-every", type=float, default=15.0, metavar="SECONDS")
    a = p.parse_args(argv)
    if not a.output and not a.eval:
        p.error("give -o CKPT.pt (train) or --eval CKPT.pt")
    if a.ctx < 2 or a.steps < 1 or a.batch < 1 or a.warmup < 1:
        p.error("--ctx must be >= 2 and --steps, --batch, --warmup >= 1")
    return a


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train_ids = torch.tensor(bytevocab.read_ids(args.train_data), dtype=torch.long)
    test_ids = torch.tensor(bytevocab.read_ids(args.test_data), dtype=torch.long)

    if args.eval:
        cfg = OPTConfig.from_dict(opt_model.checkpoint_config(args.eval))
        model = OPTForCausalLM(cfg)
        opt_model.load_weights(model, args.eval)
        ctx = min(args.ctx, cfg.max_position_embeddings)
        t = time.time()
        print_eval(evaluate(model, test_ids, train_ids, ctx, args.eval_windows))
        log(f"evaluated in {time.time() - t:.1f} s")
        return 0

    torch.manual_seed(args.seed)
    cfg = OPTConfig(**dict(MODEL, num_hidden_layers=args.layers, hidden_size=args.hidden,
                           num_attention_heads=args.heads, ffn_dim=args.ffn,
                           max_position_embeddings=args.ctx))
    model = OPTForCausalLM(cfg)
    opt_model.init_weights_hf(model, args.seed)
    n_params = opt_model.num_parameters(model)
    log(f"OPT {cfg.num_hidden_layers} layers, d {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
        f"ffn {cfg.ffn_dim}, ctx {args.ctx}, vocab {cfg.vocab_size}: {n_params / 1e6:.2f} M parameters")
    log(f"train: {args.train_data} ({len(train_ids)} bytes); {args.steps} steps x {args.batch} x {args.ctx} "
        f"= {args.steps * args.batch * args.ctx / 1e6:.2f} M tokens "
        f"({args.steps * args.batch * args.ctx / len(train_ids):.1f} passes); seed {args.seed}, "
        f"{args.threads} threads")

    t0, c0 = time.time(), os.times()
    final_loss, losses = train(model, train_ids, args)
    train_s = time.time() - t0
    c1 = os.times()
    cpu_s = (c1.user - c0.user) + (c1.system - c0.system)
    log(f"trained in {fmt_time(train_s)} ({train_s:.0f} s wall, {cpu_s:.0f} s CPU); "
        f"final train loss {final_loss:.4f} (mean of the last 50 steps)")

    t1 = time.time()
    r = evaluate(model, test_ids, train_ids, args.ctx, args.eval_windows)
    eval_s = time.time() - t1
    print_eval(r)
    log(f"evaluated in {eval_s:.0f} s")

    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    model.eval()
    opt_model.save_checkpoint(model, out)
    side = (out[:-3] if out.endswith(".pt") else out) + ".json"
    prov = {
        "generator": "tools/train_opt.py",
        "command": "/usr/bin/python3 tools/train_opt.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "checkpoint": os.path.basename(out),
        "checkpoint_sha256": sha256_file(out),
        "checkpoint_bytes": os.path.getsize(out),
        "seed": args.seed,
        "config": cfg.to_dict(),
        "parameters": n_params,
        "vocabulary": "bytes: <s>=0 <pad>=1 </s>=2 <unk>=3, byte b = b+4 (tools/bytevocab.py)",
        "train_data": {"file": args.train_data, "bytes": len(train_ids), "sha256": sha256_file(args.train_data)},
        "test_data": {"file": args.test_data, "bytes": len(test_ids), "sha256": sha256_file(args.test_data)},
        "steps": args.steps, "batch": args.batch, "ctx": args.ctx,
        "tokens_seen": args.steps * args.batch * args.ctx,
        "optimizer": {"name": "AdamW", "lr": args.lr, "betas": [0.9, 0.95], "eps": 1e-8,
                      "weight_decay": args.weight_decay, "weight_decay_on": "matrices only",
                      "schedule": f"linear warmup {args.warmup} steps, cosine to {args.min_lr_ratio} x lr",
                      "grad_clip": 1.0},
        "threads": args.threads,
        "torch": torch.__version__,
        "train_seconds": round(train_s, 1),
        "train_cpu_seconds": round(cpu_s, 1),
        "eval_seconds": round(eval_s, 1),
        "final_train_loss": round(final_loss, 5),
        "final_train_loss_note": "mean next-byte cross-entropy (nats) of the last 50 steps",
        "loss_every_50_steps": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4)
                                for i in range(0, len(losses), 50)],
        "eval": "test.txt, non-overlapping windows of ctx bytes, first byte of each window unscored",
        **{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()},
    }
    with open(side, "w") as f:
        json.dump(prov, f, indent=2)
        f.write("\n")
    log(f"wrote {args.output} ({os.path.getsize(out) / 1e6:.1f} MB) and {os.path.basename(side)}")
    if not r["test_perplexity"] < 0.5 * r["unigram_perplexity"]:
        log("warning: the model is not clearly better than the unigram baseline")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
