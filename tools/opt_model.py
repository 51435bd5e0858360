"""opt_model.py — Hugging Face's OPTForCausalLM (transformers 4.30, modeling_opt.py) in plain PyTorch.

bqc has no `transformers` package, yet its tests must see the graph a real OPT export produces.
So this file re-states 4.30's OPT decoder line for line where the line shapes the ONNX graph:
the same module tree and parameter names (model.decoder.layers.N.self_attn.q_proj, ...), the
same mask construction (_make_causal_mask + _expand_mask, added), the learned positions with
offset 2 computed from the attention mask's cumsum, the q*scaling / bmm / view / +mask /
max(finfo.min) / softmax attention, and the FFN's reshape to 2-D (so fc1/fc2 trace to Gemm).
Parts that do not reach a traced eval graph (head masks, output_attentions, gradient
checkpointing, layerdrop) are left out; dropout is kept so a training script can use the class.

forward() follows HF's return_dict=False tuple convention:
    (loss if labels given,) logits, (presents if use_cache,)
with presents a tuple of (key, value) per layer, each [batch, heads, past + seq, head_dim].

Also here: the config (with the presets the exporter offers), deterministic weight
initialisation (HF's, or "randomise every parameter" for tests) and checkpoint save/load, so
the exporter and a training script share one definition.
"""

import dataclasses
import math
from typing import Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------- config

@dataclasses.dataclass
class OPTConfig:
    """The OPTConfig fields that matter for the graph; names and defaults as in transformers."""
    vocab_size: int = 50272
    hidden_size: int = 768
    num_hidden_layers: int = 12
    ffn_dim: int = 3072
    max_position_embeddings: int = 2048
    do_layer_norm_before: bool = True
    remove_final_layer_norm: bool = False   # HF's _remove_final_layer_norm (pre-4.20 checkpoints)
    word_embed_proj_dim: Optional[int] = None  # None: same as hidden_size
    dropout: float = 0.1
    attention_dropout: float = 0.0
    num_attention_heads: int = 12
    init_std: float = 0.02
    enable_bias: bool = True
    layer_norm_elementwise_affine: bool = True
    pad_token_id: int = 1
    bos_token_id: int = 2
    eos_token_id: int = 2
    use_cache: bool = False                 # default for forward(use_cache=None)

    def __post_init__(self):
        if self.word_embed_proj_dim is None:
            self.word_embed_proj_dim = self.hidden_size
        self.validate()

    def validate(self):
        for f in ("vocab_size", "hidden_size", "num_hidden_layers", "ffn_dim",
                  "max_position_embeddings", "num_attention_heads", "word_embed_proj_dim"):
            if getattr(self, f) <= 0:
                raise ValueError(f"config: {f} must be positive (got {getattr(self, f)})")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"config: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.vocab_size <= max(self.pad_token_id, self.bos_token_id, self.eos_token_id):
            raise ValueError(f"config: vocab_size {self.vocab_size} too small for the special tokens")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "OPTConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"config: unknown field(s) {', '.join(unknown)}")
        return cls(**d)


# Presets the exporter offers. The opt-* ones use the real models' dimensions (weights random).
PRESETS = {
    # seconds to export; exercises every op of the pre-LN graph
    "tiny": dict(vocab_size=512, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                 ffn_dim=256, max_position_embeddings=128),
    # like OPT-350m: post-LN (no final decoder LayerNorm) and project_in/project_out
    "tiny-post": dict(vocab_size=512, hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                      ffn_dim=256, max_position_embeddings=128, do_layer_norm_before=False,
                      word_embed_proj_dim=32),
    "opt-125m": dict(vocab_size=50272, hidden_size=768, num_attention_heads=12,
                     num_hidden_layers=12, ffn_dim=3072, max_position_embeddings=2048),
    "opt-350m-dims": dict(vocab_size=50272, hidden_size=1024, num_attention_heads=16,
                          num_hidden_layers=24, ffn_dim=4096, max_position_embeddings=2048,
                          do_layer_norm_before=False, word_embed_proj_dim=512),
    "opt-1.3b-4l": dict(vocab_size=50272, hidden_size=2048, num_attention_heads=32,
                        num_hidden_layers=4, ffn_dim=8192, max_position_embeddings=2048),
}


# ---------------------------------------------------------------------------------- masks

def _make_causal_mask(input_ids_shape, dtype, device, past_key_values_length=0):
    """Make causal mask used for bi-directional self-attention (4.30, verbatim)."""
    bsz, tgt_len = input_ids_shape
    mask = torch.full((tgt_len, tgt_len), torch.tensor(torch.finfo(dtype).min, device=device),
                      device=device)
    mask_cond = torch.arange(mask.size(-1), device=device)
    mask.masked_fill_(mask_cond < (mask_cond + 1).view(mask.size(-1), 1), 0)
    mask = mask.to(dtype)

    if past_key_values_length > 0:
        mask = torch.cat([torch.zeros(tgt_len, past_key_values_length, dtype=dtype, device=device),
                          mask], dim=-1)
    return mask[None, None, :, :].expand(bsz, 1, tgt_len, tgt_len + past_key_values_length)


def _expand_mask(mask, dtype, tgt_len=None):
    """[bsz, seq_len] -> [bsz, 1, tgt_seq_len, src_seq_len] (4.30, verbatim)."""
    bsz, src_len = mask.size()
    tgt_len = tgt_len if tgt_len is not None else src_len

    expanded_mask = mask[:, None, None, :].expand(bsz, 1, tgt_len, src_len).to(dtype)

    inverted_mask = 1.0 - expanded_mask

    return inverted_mask.masked_fill(inverted_mask.to(torch.bool), torch.finfo(dtype).min)


# ---------------------------------------------------------------------------------- modules

class OPTLearnedPositionalEmbedding(nn.Embedding):
    """Learned positions up to a fixed maximum; OPT offsets the ids by 2 (fairseq legacy)."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        self.offset = 2
        super().__init__(num_embeddings + self.offset, embedding_dim)

    def forward(self, attention_mask: torch.LongTensor, past_key_values_length: int = 0):
        attention_mask = attention_mask.long()

        # create positions depending on attention_mask
        positions = (torch.cumsum(attention_mask, dim=1).type_as(attention_mask) * attention_mask).long() - 1

        # cut positions if `past_key_values_length` is > 0
        positions = positions[:, past_key_values_length:]

        return super().forward(positions + self.offset)


class OPTAttention(nn.Module):
    """Multi-headed attention from 'Attention Is All You Need' paper (self-attention only)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 is_decoder: bool = False, bias: bool = True):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.head_dim = embed_dim // num_heads

        if (self.head_dim * num_heads) != self.embed_dim:
            raise ValueError(f"embed_dim must be divisible by num_heads (got `embed_dim`: "
                             f"{self.embed_dim} and `num_heads`: {num_heads}).")
        self.scaling = self.head_dim**-0.5
        self.is_decoder = is_decoder

        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _shape(self, tensor: torch.Tensor, seq_len: int, bsz: int):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states: torch.Tensor,
                past_key_value: Optional[Tuple[torch.Tensor]] = None,
                attention_mask: Optional[torch.Tensor] = None):
        bsz, tgt_len, _ = hidden_states.size()

        # get query proj
        query_states = self.q_proj(hidden_states) * self.scaling
        if past_key_value is not None:
            # reuse k, v, self_attention
            key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
            value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
            key_states = torch.cat([past_key_value[0], key_states], dim=2)
            value_states = torch.cat([past_key_value[1], value_states], dim=2)
        else:
            # self_attention
            key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
            value_states = self._shape(self.v_proj(hidden_states), -1, bsz)

        if self.is_decoder:
            past_key_value = (key_states, value_states)

        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.view(*proj_shape)
        value_states = value_states.view(*proj_shape)

        src_len = key_states.size(1)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))

        if attn_weights.size() != (bsz * self.num_heads, tgt_len, src_len):
            raise ValueError(f"Attention weights should be of size {(bsz * self.num_heads, tgt_len, src_len)}, "
                             f"but is {attn_weights.size()}")

        if attention_mask is not None:
            if attention_mask.size() != (bsz, 1, tgt_len, src_len):
                raise ValueError(f"Attention mask should be of size {(bsz, 1, tgt_len, src_len)}, "
                                 f"but is {attention_mask.size()}")
            attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + attention_mask
            attn_weights = torch.max(
                attn_weights, torch.tensor(torch.finfo(attn_weights.dtype).min, device=attn_weights.device))
            attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)

        # upcast to fp32 if the weights are in fp16. Please see https://github.com/huggingface/transformers/pull/17437
        if attn_weights.dtype == torch.float16:
            attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(torch.float16)
        else:
            attn_weights = F.softmax(attn_weights, dim=-1)

        attn_probs = F.dropout(attn_weights, p=self.dropout, training=self.training)

        attn_output = torch.bmm(attn_probs, value_states)

        if attn_output.size() != (bsz * self.num_heads, tgt_len, self.head_dim):
            raise ValueError(f"`attn_output` should be of size {(bsz, self.num_heads, tgt_len, self.head_dim)}, "
                             f"but is {attn_output.size()}")

        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)
        attn_output = attn_output.transpose(1, 2)

        # Use the `embed_dim` from the config (stored in the class) rather than `hidden_state` because `attn_output` can be
        # partitioned aross GPUs when using tensor-parallelism.
        attn_output = attn_output.reshape(bsz, tgt_len, self.embed_dim)

        attn_output = self.out_proj(attn_output)

        return attn_output, past_key_value


class OPTDecoderLayer(nn.Module):
    def __init__(self, config: OPTConfig):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.self_attn = OPTAttention(embed_dim=self.embed_dim, num_heads=config.num_attention_heads,
                                      dropout=config.attention_dropout, is_decoder=True,
                                      bias=config.enable_bias)
        self.do_layer_norm_before = config.do_layer_norm_before
        self.dropout = config.dropout
        self.activation_fn = nn.ReLU()

        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim,
                                                 elementwise_affine=config.layer_norm_elementwise_affine)
        self.fc1 = nn.Linear(self.embed_dim, config.ffn_dim, bias=config.enable_bias)
        self.fc2 = nn.Linear(config.ffn_dim, self.embed_dim, bias=config.enable_bias)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim,
                                             elementwise_affine=config.layer_norm_elementwise_affine)

    def forward(self, hidden_states: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                past_key_value: Optional[Tuple[torch.Tensor]] = None, use_cache: bool = False):
        residual = hidden_states

        # 125m, 1.7B, ..., 175B applies layer norm BEFORE attention
        if self.do_layer_norm_before:
            hidden_states = self.self_attn_layer_norm(hidden_states)

        # Self Attention
        hidden_states, present_key_value = self.self_attn(
            hidden_states=hidden_states, past_key_value=past_key_value, attention_mask=attention_mask)
        hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = residual + hidden_states

        # 350m applies layer norm AFTER attention
        if not self.do_layer_norm_before:
            hidden_states = self.self_attn_layer_norm(hidden_states)

        # Fully Connected
        hidden_states_shape = hidden_states.shape
        hidden_states = hidden_states.reshape(-1, hidden_states.size(-1))
        residual = hidden_states

        # 125m, 1.7B, ..., 175B applies layer norm BEFORE attention
        if self.do_layer_norm_before:
            hidden_states = self.final_layer_norm(hidden_states)

        hidden_states = self.fc1(hidden_states)
        hidden_states = self.activation_fn(hidden_states)

        hidden_states = self.fc2(hidden_states)
        hidden_states = F.dropout(hidden_states, p=self.dropout, training=self.training)

        hidden_states = (residual + hidden_states).view(hidden_states_shape)

        # 350m applies layer norm AFTER attention
        if not self.do_layer_norm_before:
            hidden_states = self.final_layer_norm(hidden_states)

        outputs = (hidden_states,)
        if use_cache:
            outputs += (present_key_value,)
        return outputs


class OPTDecoder(nn.Module):
    def __init__(self, config: OPTConfig):
        super().__init__()
        self.config = config
        self.dropout = config.dropout
        self.padding_idx = config.pad_token_id
        self.max_target_positions = config.max_position_embeddings
        self.vocab_size = config.vocab_size

        self.embed_tokens = nn.Embedding(config.vocab_size, config.word_embed_proj_dim, self.padding_idx)
        self.embed_positions = OPTLearnedPositionalEmbedding(config.max_position_embeddings,
                                                             config.hidden_size)

        if config.word_embed_proj_dim != config.hidden_size:
            self.project_out = nn.Linear(config.hidden_size, config.word_embed_proj_dim, bias=False)
        else:
            self.project_out = None

        if config.word_embed_proj_dim != config.hidden_size:
            self.project_in = nn.Linear(config.word_embed_proj_dim, config.hidden_size, bias=False)
        else:
            self.project_in = None

        # Note that the only purpose of `config._remove_final_layer_norm` is to keep backward compatibility
        # with checkpoints that have been fine-tuned before transformers v4.20.1
        # see https://github.com/facebookresearch/metaseq/pull/164
        if config.do_layer_norm_before and not config.remove_final_layer_norm:
            self.final_layer_norm = nn.LayerNorm(config.hidden_size,
                                                 elementwise_affine=config.layer_norm_elementwise_affine)
        else:
            self.final_layer_norm = None

        self.layers = nn.ModuleList([OPTDecoderLayer(config) for _ in range(config.num_hidden_layers)])

    def _prepare_decoder_attention_mask(self, attention_mask, input_shape, inputs_embeds,
                                        past_key_values_length):
        # create causal mask
        # [bsz, seq_len] -> [bsz, 1, tgt_seq_len, src_seq_len]
        combined_attention_mask = None
        if input_shape[-1] > 1:
            combined_attention_mask = _make_causal_mask(
                input_shape, inputs_embeds.dtype, device=inputs_embeds.device,
                past_key_values_length=past_key_values_length)

        if attention_mask is not None:
            # [bsz, seq_len] -> [bsz, 1, tgt_seq_len, src_seq_len]
            expanded_attn_mask = _expand_mask(attention_mask, inputs_embeds.dtype,
                                              tgt_len=input_shape[-1]).to(inputs_embeds.device)
            combined_attention_mask = (
                expanded_attn_mask if combined_attention_mask is None
                else expanded_attn_mask + combined_attention_mask)

        return combined_attention_mask

    def forward(self, input_ids: torch.LongTensor, attention_mask: Optional[torch.Tensor] = None,
                past_key_values=None, use_cache: bool = False):
        input_shape = input_ids.size()
        input_ids = input_ids.view(-1, input_shape[-1])
        inputs_embeds = self.embed_tokens(input_ids)

        batch_size, seq_length = input_shape
        past_key_values_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        # required mask seq length can be calculated via length of past
        mask_seq_length = past_key_values_length + seq_length

        # embed positions
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, mask_seq_length, device=inputs_embeds.device)
        elif attention_mask.shape[1] != mask_seq_length:
            raise ValueError(f"The provided attention mask has length {attention_mask.shape[1]}, but its length "
                             f"should be {mask_seq_length} (sum of the lengths of current and past inputs)")
        causal_attention_mask = self._prepare_decoder_attention_mask(
            attention_mask, input_shape, inputs_embeds, past_key_values_length)
        pos_embeds = self.embed_positions(attention_mask, past_key_values_length)

        if self.project_in is not None:
            inputs_embeds = self.project_in(inputs_embeds)

        hidden_states = inputs_embeds + pos_embeds

        next_decoder_cache = () if use_cache else None
        for idx, decoder_layer in enumerate(self.layers):
            past_key_value = past_key_values[idx] if past_key_values is not None else None
            layer_outputs = decoder_layer(hidden_states, attention_mask=causal_attention_mask,
                                          past_key_value=past_key_value, use_cache=use_cache)
            hidden_states = layer_outputs[0]
            if use_cache:
                next_decoder_cache += (layer_outputs[1],)

        if self.final_layer_norm is not None:
            hidden_states = self.final_layer_norm(hidden_states)

        if self.project_out is not None:
            hidden_states = self.project_out(hidden_states)

        return hidden_states, next_decoder_cache


class OPTModel(nn.Module):
    def __init__(self, config: OPTConfig):
        super().__init__()
        self.decoder = OPTDecoder(config)

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False):
        return self.decoder(input_ids, attention_mask, past_key_values, use_cache)


class OPTForCausalLM(nn.Module):
    """The language model: OPTModel plus lm_head, whose weight is tied to embed_tokens."""

    def __init__(self, config: OPTConfig):
        super().__init__()
        self.config = config
        self.model = OPTModel(config)
        # the lm_head weight is automatically tied to the embed tokens weight
        self.lm_head = nn.Linear(config.word_embed_proj_dim, config.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self):
        self.lm_head.weight = self.model.decoder.embed_tokens.weight

    def forward(self, input_ids: torch.LongTensor, attention_mask: Optional[torch.Tensor] = None,
                past_key_values=None, use_cache: Optional[bool] = None,
                labels: Optional[torch.LongTensor] = None):
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        hidden_states, presents = self.model.decoder(input_ids, attention_mask, past_key_values, use_cache)

        logits = self.lm_head(hidden_states).contiguous()

        loss = None
        if labels is not None:
            # Shift so that tokens < n predict n
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss = F.cross_entropy(shift_logits.view(-1, self.config.vocab_size), shift_labels.view(-1))

        output = (logits,)
        if use_cache:
            output += (presents,)
        return ((loss,) + output) if loss is not None else output


# ---------------------------------------------------------------------------------- weights

def init_weights_hf(model: OPTForCausalLM, seed: int):
    """HF's _init_weights: matrices and embeddings N(0, init_std), biases 0, LayerNorm 1/0,
    the padding_idx row of embed_tokens zero. What a training script starts from."""
    g = torch.Generator().manual_seed(seed)
    std = model.config.init_std
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                if module is model.lm_head:
                    continue  # tied to embed_tokens
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * std)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def randomize_all(model: OPTForCausalLM, seed: int):
    """Every parameter random, so a test notices any parameter that is dropped or misused:
    matrices and embeddings N(0, init_std) like HF, and also biases N(0, 0.02), LayerNorm
    gamma 1 + N(0, 0.1) and beta N(0, 0.02). The padding row stays zero as in HF."""
    init_weights_hf(model, seed)
    g = torch.Generator().manual_seed(seed + 0x5eed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.02)
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                module.weight.copy_(1.0 + torch.randn(module.weight.shape, generator=g) * 0.1)
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.02)


def save_checkpoint(model: OPTForCausalLM, path: str, **extra):
    """Save {'config': dict, 'state_dict': ..., **extra}; export_opt.py --weights reads it."""
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict(), **extra}, path)


def load_weights(model: OPTForCausalLM, path: str):
    """Load a checkpoint from save_checkpoint() or a bare state_dict into `model`.

    Shapes and names must match the model's config exactly; lm_head.weight may be absent (it
    is tied) but, when present, must equal embed_tokens.weight. Raises ValueError with the
    offending names otherwise."""
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds: unpickling, zip, file errors
        raise ValueError(f"{path}: cannot load weights: {e}") from None
    state = obj["state_dict"] if isinstance(obj, dict) and "state_dict" in obj else obj
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict or a checkpoint with 'state_dict', got {type(obj).__name__}")
    want = model.state_dict()
    state = dict(state)
    if "lm_head.weight" in state:
        lm = state.pop("lm_head.weight")
        emb = state.get("model.decoder.embed_tokens.weight")
        if emb is not None and not torch.equal(lm, emb):
            raise ValueError(f"{path}: lm_head.weight differs from model.decoder.embed_tokens.weight "
                             f"(OPT ties them; untied heads are not supported)")
    missing = sorted(k for k in want if k not in state and k != "lm_head.weight")
    unexpected = sorted(k for k in state if k not in want)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the config: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, the config needs {tuple(want[k].shape)}")
    model.load_state_dict(state, strict=False)
    model.tie_weights()


def checkpoint_config(path: str) -> Optional[dict]:
    """The config dict stored in a save_checkpoint() file, or None for a bare state_dict."""
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and isinstance(obj.get("config"), dict):
        return obj["config"]
    return None


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) parameters counted once


def _selftest():
    cfg = OPTConfig(**PRESETS["tiny"])
    m = OPTForCausalLM(cfg).eval()
    randomize_all(m, 0)
    ids = torch.randint(2, cfg.vocab_size, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    with torch.no_grad():
        (full,) = m(ids, mask)
        _, pres = m(ids[:, :4], mask[:, :4], use_cache=True)
        step, _ = m(ids[:, 4:], mask, past_key_values=pres, use_cache=True)
    err = (full[:, 4:] - step).abs().max().item()
    print(f"opt_model self-test: cached vs full max diff {err:.2e}")
    assert err < 1e-4 * math.sqrt(full.abs().max().item() + 1)


if __name__ == "__main__":
    _selftest()
