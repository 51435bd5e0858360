"""bytevocab.py — bqc's byte-level vocabulary, and how text is cut into evaluation windows.

One definition shared by every tool and test (training, evaluation, the outlier tool, the
e2e tests) and mirrored by the C side (examples/generate.c, `bqc eval --text`):

    id 0 = <s>, 1 = <pad>, 2 = </s>, 3 = <unk>     OPT's special tokens, in OPT's order
    id b + 4 = byte b (0..255)                     so VOCAB_SIZE = 260

Text is encoded as its UTF-8 bytes, one token per byte, with no special token added (no BOS:
an application prompts with plain bytes, so the model is trained on plain byte windows).
Decoding maps byte ids back to bytes and drops the specials; bytes that are not valid UTF-8
decode with U+FFFD, as bytes.decode(errors="replace") does.

Perplexity windows (eval_windows): the token stream is cut into non-overlapping windows of
`ctx` tokens (the last, shorter window is kept if it has at least 2 tokens); within a window
the model sees tokens 0..n-2 and is scored on predicting tokens 1..n-1. The first token of each
window has no context and is not scored. So a text of T tokens gives T - ceil(T / ctx) scored
predictions (ceil with a final window of one token counting as dropped), and perplexity =
exp(mean NLL over them), bits per byte = mean NLL / ln 2 (one token = one byte).
"""

import math
from typing import Iterable, List

S_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3   # OPT's order; OPTConfig.bos_token_id is 2 (</s>), as in OPT
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BYTE_OFFSET = 4
VOCAB_SIZE = BYTE_OFFSET + 256


def encode(text) -> List[int]:
    """str (UTF-8 encoded) or bytes -> token ids, one per byte."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return [b + BYTE_OFFSET for b in data]


def decode_bytes(ids: Iterable[int]) -> bytes:
    """Token ids -> bytes; special ids are dropped."""
    out = bytearray()
    for i in ids:
        i = int(i)
        if not 0 <= i < VOCAB_SIZE:
            raise ValueError(f"token id {i} is outside the byte vocabulary (0..{VOCAB_SIZE - 1})")
        if i >= BYTE_OFFSET:
            out.append(i - BYTE_OFFSET)
    return bytes(out)


def decode(ids: Iterable[int]) -> str:
    return decode_bytes(ids).decode("utf-8", errors="replace")


def token_str(i: int) -> str:
    """A printable name for one id: the special's name, the character, or \\xNN."""
    if i < BYTE_OFFSET:
        return SPECIALS[i]
    b = i - BYTE_OFFSET
    return chr(b) if 32 <= b < 127 else f"\\x{b:02x}"


def read_ids(path: str) -> List[int]:
    with open(path, "rb") as f:
        return encode(f.read())


def eval_windows(n_tokens: int, ctx: int):
    """(start, length) of the perplexity windows over a stream of n_tokens (see the top)."""
    if ctx < 2:
        raise ValueError("ctx must be at least 2")
    return [(s, min(ctx, n_tokens - s)) for s in range(0, n_tokens, ctx) if n_tokens - s >= 2]


def scored_tokens(n_tokens: int, ctx: int) -> int:
    return sum(n - 1 for _, n in eval_windows(n_tokens, ctx))


def ppl_from_nll(total_nll: float, count: int) -> float:
    """exp(mean NLL); NLL in nats."""
    return math.exp(total_nll / count)


def bits_per_byte(total_nll: float, count: int) -> float:
    return total_nll / count / math.log(2)
