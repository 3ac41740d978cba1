"""GPT: a decoder-only Transformer language model (GPT-2's architecture, nanoGPT's layout).

Shapes: B batch, T time (tokens), C channels (n_embd), H heads, D head size (C / H), V vocab.

    x_0 = wte[idx] + wpe[positions]                            token + learned position
    for each block:                                            (pre-LN, as GPT-2)
        x = x + c_proj(attention(c_attn(ln_1(x))))             masked self-attention
        x = x + mlp(ln_2(x)),  mlp(h) = c_proj(gelu(c_fc(h)))  position-wise feed-forward
    logits = ln_f(x) @ wte^T                                   weight tying (no separate head)

Parameter names follow GPT-2's checkpoints (transformer.wte, transformer.h.0.attn.c_attn, ...)
so weights map one to one (GPT-2 stores its Conv1D weights transposed: (in, out)).

Generation uses a KV cache: the keys and values of past positions are kept per layer, so each
new token costs one position's work instead of re-reading the whole prefix. The prompt goes
through the Tensor forward; each following token, by default, through the fused decoder
(kernels/gpt_decode.py GPTDecoder: the same equations, one call per block;
``generate(fused=False)`` keeps the Tensor ops).
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad
from ..creation import Generator, arange
from ..generate import decode_loop
from ..kernels.gpt_decode import BlockWeights, GPTDecoder, GPTWeights
from .gpt2_hf import read_gpt2_folder, save_gpt2_folder
from ..ops import cat
from ..tensor import Tensor


@dataclass
class GPTConfig:
    block_size: int = 256        # longest sequence (size of the position table)
    vocab_size: int = 50257      # GPT-2's byte-level BPE vocabulary
    n_layer: int = 4             # number of Transformer blocks
    n_head: int = 4              # attention heads per block
    n_embd: int = 256            # channels C (must divide by n_head)
    dropout: float = 0.0         # dropout on embeddings, attention output and MLP output
    bias: bool = True            # biases in the Linear layers and LayerNorms (GPT-2: True)
    layer_norm_epsilon: float = 1e-5   # GPT-2's epsilon
    activation: str = "gelu_new"  # GPT-2's GELU: the tanh approximation ("gelu" = exact)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")


def norm_then_linear(norm, linear, x):
    """linear(norm(x)), or linear(x) when norm is None. A plain LayerNorm over the last axis
    and a plain Linear run as one op (F.layer_norm_linear), which keeps x and not norm(x) for
    backward: the same values and gradients, one array of x's size less per pair."""
    if norm is None:
        return linear(x)
    if _fusable_norm(norm) and type(linear) is nn.Linear:
        return F.layer_norm_linear(x, norm.weight, norm.bias, linear.weight, linear.bias,
                                   norm.eps)
    return linear(norm(x))                      # a replaced module (an adapter, say)


def _fusable_norm(norm):
    """A plain LayerNorm over the last axis (not a subclass, which may compute otherwise)."""
    return type(norm) is nn.LayerNorm and len(norm.normalized_shape) == 1


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, generator=generator)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, generator=generator)
        self.resid_dropout = nn.Dropout(cfg.dropout, generator=generator)

    def forward(self, x, cache=None, norm=None):
        """Attention over norm(x) (the block's ln_1), or over x when norm is None."""
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        qkv = norm_then_linear(norm, self.c_attn, x)                      # (B, T, 3C)
        qkv = qkv.reshape(B, T, 3, H, D).permute(2, 0, 3, 1, 4)           # (3, B, H, T, D)
        if cache is None:  # q, k, v stay packed: their gradient comes back as one buffer
            y = F.packed_self_attention(qkv, is_causal=True)              # (B, H, T, D)
        else:  # generation: the keys and values of past positions come from the cache
            q, k, v = qkv[0], qkv[1], qkv[2]                              # (B, H, T, D) each
            if cache.get("k") is not None:
                k = cat([cache["k"], k], dim=2)                           # (B, H, past+T, D)
                v = cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k.detach(), v.detach()
            # query i sits at position past + i and sees keys 0 .. past + i
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               causal_align="bottom-right")
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)                        # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, generator=generator)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, generator=generator)
        self.dropout = nn.Dropout(cfg.dropout, generator=generator)
        self.approximate = "tanh" if cfg.activation == "gelu_new" else "none"

    def forward(self, x, norm=None):
        """The MLP of norm(x) (the block's ln_2), or of x when norm is None."""
        h = norm_then_linear(norm, self.c_fc, x)                          # (B, T, 4C)
        if type(self.c_proj) is nn.Linear:
            # c_proj(gelu(h)) as one op, which keeps h and not gelu(h) for backward (the
            # step's widest activation): same values, one array of (B, T, 4C) less per layer
            y = F.gelu_linear(h, self.c_proj.weight, self.c_proj.bias, self.approximate)
        else:                                   # a replaced c_proj (an adapter, say)
            y = self.c_proj(F.gelu(h, approximate=self.approximate))
        return self.dropout(y)                                            # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, generator)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, bias=cfg.bias)
        self.mlp = MLP(cfg, generator)

    def forward(self, x, cache=None):
        x = x + self.attn(x, cache, norm=self.ln_1)                      # attn(ln_1(x))
        return x + self.mlp(x, norm=self.ln_2)                            # mlp(ln_2(x))


class GPT(nn.Module):
    def __init__(self, config=None, generator=None, **overrides):
        super().__init__()
        cfg = config if config is not None else GPTConfig(**overrides)
        self.config = cfg
        g = generator if generator is not None else Generator(0)
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(cfg.vocab_size, cfg.n_embd, generator=g),
            "wpe": nn.Embedding(cfg.block_size, cfg.n_embd, generator=g),
            "drop": nn.Dropout(cfg.dropout, generator=g),
            "h": nn.ModuleList([Block(cfg, g) for _ in range(cfg.n_layer)]),
            "ln_f": nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon, bias=cfg.bias),
        })
        self._init_weights(g)

    def _init_weights(self, g):
        """GPT-2's initialisation: N(0, 0.02) everywhere, zero biases, and the residual
        projections scaled by 1 / sqrt(2 n_layer) (each block adds two of them)."""
        rng = g.rng
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.data[...] = 0
            elif p.ndim == 2:
                std = 0.02
                if name.endswith("c_proj.weight"):
                    std = 0.02 / math.sqrt(2 * self.config.n_layer)
                p.data[...] = rng.normal(0.0, std, size=p.shape)

    def forward(self, idx, targets=None, caches=None, logits_to_keep=0):
        """idx (B, T) int -> logits (B, T, V); with targets (B, T), also the mean cross-entropy
        (targets of -100 are ignored). ``caches`` (one dict per layer) enables the KV cache.
        ``logits_to_keep`` = n > 0: logits of the last n positions only, (B, n, V), as in
        Hugging Face's models: generation needs one position, and the output head is the
        largest product of a big-vocabulary model (GPT-2: 768 x 50257 per position)."""
        idx = idx if isinstance(idx, Tensor) else Tensor(idx, dtype=np.int64)
        B, T = idx.shape
        past = 0
        if caches is not None and caches[0].get("k") is not None:
            past = caches[0]["k"].shape[2]
        if past + T > self.config.block_size:
            raise ValueError(f"sequence of length {past + T} is longer than block_size "
                             f"{self.config.block_size}")
        tr = self.transformer
        pos = arange(past, past + T, device=tr.wpe.weight.device)          # (T,)
        x = tr.drop(tr.wte(idx) + tr.wpe(pos))                            # (B, T, C)
        for i, block in enumerate(tr.h):
            x = block(x, None if caches is None else caches[i])
        if isinstance(logits_to_keep, bool) or not isinstance(logits_to_keep, int) \
                or logits_to_keep < 0:
            raise ValueError(f"logits_to_keep must be an int >= 0, got {logits_to_keep!r}")
        if logits_to_keep:
            if targets is not None:
                raise ValueError("logits_to_keep drops positions that targets score")
            x = x[:, -logits_to_keep:]                                    # (B, n, C)
        if _fusable_norm(tr.ln_f):
            # ln_f(x) @ wte^T as one op, which keeps x and not ln_f(x) for backward
            logits = F.layer_norm_linear(x, tr.ln_f.weight, tr.ln_f.bias, tr.wte.weight,
                                         None, tr.ln_f.eps)              # (B, T or n, V)
        else:
            logits = tr.ln_f(x) @ tr.wte.weight.T
        loss = None
        if targets is not None:
            t = targets if isinstance(targets, Tensor) else Tensor(targets, dtype=np.int64)
            loss = F.cross_entropy(logits.reshape(B * T, -1), t.reshape(B * T))
        return logits, loss

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                 do_sample=True, generator=None, use_cache=True, eos_token_id=None,
                 stream=None, fused=True, **sampling):
        """Extend idx (B, T) by max_new_tokens tokens; returns a (B, T + n) int64 array.

        The sampling arguments are generate.decode_loop's. With ``use_cache`` the keys and
        values of past positions are reused (same tokens as without); without, the whole
        (cropped) prefix is re-read at every step. ``fused``: after the prompt, each token
        runs through the fused decoder (NumPy float models of few sequences).
        """
        block = self.config.block_size
        seen = []                                        # the token ids so far, in pieces

        def step(new_ids, cache):                        # decode_loop's protocol
            seen.append(np.asarray(new_ids))
            ids = np.concatenate(seen, axis=1)[:, -block:]               # (B, <= block)
            if not use_cache:
                # all positions' logits, as in training: with one row kept, the head would
                # run on the decoding kernel, whose OpenMP workers spin into the next step's
                # pool-threaded forward (200 tokens of the yardstick model: +1.2 s)
                return self(ids)[0].data[:, -1], None
            if cache is None or _cached_length(cache) + new_ids.shape[1] > block:
                # the prompt, or the window slides: (re)compute the keys and values
                caches = [dict() for _ in self.transformer.h]
                logits = self(ids, caches=caches, logits_to_keep=1)[0].data[:, -1]  # (B, V)
                if fused and GPTDecoder.usable(logits):
                    return logits, self._decoder(caches)
                return logits, caches
            if isinstance(cache, GPTDecoder):
                return cache.step(new_ids), cache
            return self(new_ids, caches=cache, logits_to_keep=1)[0].data[:, -1], cache

        was_training = self.training
        self.eval()
        try:
            return decode_loop(step, idx, max_new_tokens, temperature=temperature, top_k=top_k,
                               top_p=top_p, do_sample=do_sample, generator=generator,
                               eos_token_id=eos_token_id, stream=stream, **sampling)
        finally:
            self.train(was_training)

    def _decoder(self, caches):
        """The fused decoder (kernels/gpt_decode.py) over this model's weights and caches."""
        cfg, tr = self.config, self.transformer
        dtype = tr.wte.weight.dtype

        def ln(layer):    # a LayerNorm's (weight, bias): zeros where it has no bias
            return layer.weight.data, _bias(layer.bias, layer.weight.shape[0], dtype)

        def linear(layer):
            return layer.weight.data, _bias(layer.bias, layer.out_features, dtype)

        blocks = [BlockWeights(*ln(b.ln_1), *linear(b.attn.c_attn), *linear(b.attn.c_proj),
                               *ln(b.ln_2), *linear(b.mlp.c_fc), *linear(b.mlp.c_proj))
                  for b in tr.h]
        weights = GPTWeights(tr.wte.weight.data, tr.wpe.weight.data, *ln(tr.ln_f), blocks)
        gelu = "tanh" if cfg.activation == "gelu_new" else "none"
        return GPTDecoder(weights, cfg.n_head, cfg.layer_norm_epsilon, gelu, cfg.block_size,
                          [c["k"].data for c in caches], [c["v"].data for c in caches])

    def config_dict(self):
        return asdict(self.config)

    @classmethod
    def from_pretrained(cls, folder, dtype=np.float32):
        """A GPT from a Hugging Face GPT-2 folder (config.json + model.safetensors); the
        tokenizer, if the folder has one, is at ``model.tokenizer``."""
        config, weights, tokenizer = read_gpt2_folder(folder, dtype)
        model = cls(GPTConfig(**config))
        if np.dtype(dtype) != np.float32:
            model.to(np.dtype(dtype))
        model.load_state_dict(weights)   # names every missing, unexpected or mis-shaped key
        model.tokenizer = tokenizer
        return model

    def save_pretrained(self, folder, tokenizer=None):
        """Write a Hugging Face GPT-2 folder that transformers loads."""
        return save_gpt2_folder(self, folder, tokenizer or getattr(self, "tokenizer", None))


def _cached_length(cache):
    """Positions held by a KV cache: a GPTDecoder, or the Tensor path's list of dicts."""
    return cache.t if isinstance(cache, GPTDecoder) else cache[0]["k"].shape[2]


def _bias(bias, n, dtype):
    return bias.data if bias is not None else np.zeros(n, dtype)
