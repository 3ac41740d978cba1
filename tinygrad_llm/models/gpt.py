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
through the Tensor forward; each following token, by default, through one fused call per block
(kernels/gpt_decode.py, the same equations; ``generate(fused=False)`` keeps the Tensor ops).
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad
from ..creation import Generator
from ..generate import decode_loop
from ..kernels import _blas
from ..kernels.gpt_decode import FEW_ROWS, BlockWeights, gpt_block_decode
from ..kernels.layer_norm import layer_norm_forward
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
    bias: bool = True            # biases in Linear layers and LayerNorms (GPT-2: True)
    layer_norm_epsilon: float = 1e-5   # GPT-2's epsilon
    activation: str = "gelu_new"  # GPT-2's GELU: the tanh approximation ("gelu" = exact)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, generator=generator)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, generator=generator)
        self.resid_dropout = nn.Dropout(cfg.dropout, generator=generator)

    def forward(self, x, cache=None):
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        qkv = self.c_attn(x)                                              # (B, T, 3C)
        qkv = qkv.reshape(B, T, 3, H, D).permute(2, 0, 3, 1, 4)           # (3, B, H, T, D)
        q, k, v = qkv[0], qkv[1], qkv[2]                                  # (B, H, T, D) each
        past = 0
        if cache is not None and cache.get("k") is not None:
            past = cache["k"].shape[2]
            k = cat([cache["k"], k], dim=2)                               # (B, H, past+T, D)
            v = cat([cache["v"], v], dim=2)
        if cache is not None:
            cache["k"], cache["v"] = k.detach(), v.detach()
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:  # one new token sees every cached position: no mask needed
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # new query i sits at position past + i and sees keys 0 .. past + i
            allowed = np.arange(past + T)[None, :] <= (past + np.arange(T))[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=Tensor(allowed))
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)                        # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, generator=generator)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, generator=generator)
        self.dropout = nn.Dropout(cfg.dropout, generator=generator)
        self.approximate = "tanh" if cfg.activation == "gelu_new" else "none"

    def forward(self, x):
        h = F.gelu(self.c_fc(x), approximate=self.approximate)            # (B, T, 4C)
        return self.dropout(self.c_proj(h))                               # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg, generator=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg, generator)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg, generator)

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


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
            "ln_f": nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
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

    def forward(self, idx, targets=None, caches=None):
        """idx (B, T) int -> logits (B, T, V); with targets (B, T), also the mean cross-entropy
        (targets of -100 are ignored). ``caches`` (one dict per layer) enables the KV cache."""
        idx = idx if isinstance(idx, Tensor) else Tensor(np.asarray(idx, dtype=np.int64))
        B, T = idx.shape
        past = 0
        if caches is not None and caches[0].get("k") is not None:
            past = caches[0]["k"].shape[2]
        if past + T > self.config.block_size:
            raise ValueError(f"sequence of length {past + T} is longer than block_size "
                             f"{self.config.block_size}")
        tr = self.transformer
        pos = Tensor(np.arange(past, past + T, dtype=np.int64))
        x = tr.drop(tr.wte(idx) + tr.wpe(pos))                            # (B, T, C)
        for i, block in enumerate(tr.h):
            x = block(x, None if caches is None else caches[i])
        x = tr.ln_f(x)
        logits = x @ tr.wte.weight.T                                      # (B, T, V)
        loss = None
        if targets is not None:
            t = targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets))
            loss = F.cross_entropy(logits.reshape(B * T, -1), t.reshape(B * T))
        return logits, loss

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                 do_sample=True, generator=None, use_cache=True, eos_token_id=None,
                 stream=None, fused=True):
        """Extend idx (B, T) by max_new_tokens tokens; returns a (B, T + n) int64 array.

        With ``use_cache`` the keys and values of past positions are reused (same tokens as
        without it); without, the whole (cropped) prefix is re-read at every step. ``fused``:
        after the prompt, each token runs through one fused kernel call per block (NumPy
        float models, at most FEW_ROWS sequences; otherwise the Tensor ops run).
        """
        was_training = self.training
        self.eval()
        block = self.config.block_size
        history = {"ids": None}

        def step(new_ids, cache):
            # keep the full token history (for the sliding window and the no-cache path)
            if history["ids"] is None:
                history["ids"] = np.asarray(new_ids)
            else:
                history["ids"] = np.concatenate([history["ids"], np.asarray(new_ids)], axis=1)
            if not use_cache:
                logits, _ = self(history["ids"][:, -block:])
                return logits.data[:, -1, :], None
            if cache is None or _cached_length(cache) + new_ids.shape[1] > block:
                # the prompt, or the window slides: (re)compute the last window's keys/values
                cache = [dict() for _ in self.transformer.h]
                logits, _ = self(history["ids"][:, -block:], caches=cache)
                if fused and _FusedDecoding.usable(logits.data):
                    cache = _FusedDecoding(self, cache)
                return logits.data[:, -1, :], cache
            if isinstance(cache, _FusedDecoding):
                return cache.step(new_ids), cache
            logits, _ = self(new_ids, caches=cache)
            return logits.data[:, -1, :], cache

        try:
            return decode_loop(step, idx, max_new_tokens,
                               temperature=temperature, top_k=top_k, top_p=top_p,
                               do_sample=do_sample, generator=generator,
                               eos_token_id=eos_token_id, stream=stream)
        finally:
            self.train(was_training)

    def config_dict(self):
        return asdict(self.config)

    @classmethod
    def from_pretrained(cls, folder, dtype=np.float32):
        """A GPT from a Hugging Face GPT-2 folder (config.json + model.safetensors); the
        tokenizer, if the folder has one, is at ``model.tokenizer``."""
        from .gpt2_hf import load_gpt2_folder
        model, tokenizer = load_gpt2_folder(folder, dtype)
        model.tokenizer = tokenizer
        return model

    def save_pretrained(self, folder, tokenizer=None):
        """Write a Hugging Face GPT-2 folder that transformers loads."""
        from .gpt2_hf import save_gpt2_folder
        return save_gpt2_folder(self, folder, tokenizer or getattr(self, "tokenizer", None))


def _cached_length(cache):
    """Positions held by a KV cache: a _FusedDecoding or the Tensor path's list of dicts."""
    return cache.t if isinstance(cache, _FusedDecoding) else cache[0]["k"].shape[2]


class _FusedDecoding:
    """The KV cache and weights of the fused decoding step (kernels/gpt_decode.py).

    Keys and values live in preallocated (B, H, S, D) arrays, one pair per block, S =
    block_size; positions < t are filled (first from the Tensor forward over the prompt).
    ``step`` runs one new token per sequence: embeddings, one gpt_block_decode call per
    block, ln_f and the tied head, and returns the logits (B, V).
    """

    @staticmethod
    def usable(logits):
        """NumPy float logits of few sequences: what the numba decoding kernel runs on."""
        return (type(logits) is np.ndarray and logits.dtype in (np.float32, np.float64)
                and logits.shape[0] <= FEW_ROWS)

    def __init__(self, model, caches):
        cfg, tr = model.config, model.transformer
        self.n_head, self.eps = cfg.n_head, cfg.layer_norm_epsilon
        self.gelu = "tanh" if cfg.activation == "gelu_new" else "none"
        self.wte, self.wpe = tr.wte.weight.data, tr.wpe.weight.data
        dtype = self.wte.dtype
        self.ln_f = _ln_params(tr.ln_f, dtype)
        self.weights = [_block_weights(blk, dtype) for blk in tr.h]
        B, H, self.t, head_size = caches[0]["k"].shape
        self.k, self.v = [], []
        for c in caches:
            for name, store in (("k", self.k), ("v", self.v)):
                buf = np.zeros((B, H, cfg.block_size, head_size), dtype=dtype)
                buf[:, :, :self.t] = c[name].data
                store.append(buf)

    def step(self, new_ids):
        new_ids = np.asarray(new_ids)
        if new_ids.ndim != 2 or new_ids.shape[1] != 1:
            raise ValueError(f"the fused decoding step takes one new token per sequence, (B, "
                             f"1), got shape {new_ids.shape}")
        ids = F.check_ids(new_ids[:, 0], self.wte.shape[0], "generate")                # (B,)
        x = self.wte[ids] + self.wpe[self.t]                                   # (B, C)
        for w, k, v in zip(self.weights, self.k, self.v):
            gpt_block_decode(x, w, k, v, self.t, self.n_head, self.eps, self.gelu)
        x = layer_norm_forward(x, *self.ln_f, eps=self.eps)[0]
        self.t += 1
        return _blas.matmul(x, self.wte.T)                                     # (B, V)


def _ln_params(layer, dtype):
    """A LayerNorm's (weight, bias) arrays: ones and zeros where it has none."""
    c = layer.normalized_shape
    return (layer.weight.data if layer.weight is not None else np.ones(c, dtype),
            layer.bias.data if layer.bias is not None else np.zeros(c, dtype))


def _linear_params(layer, dtype):
    """A Linear's (weight (out, in), bias (out,)) arrays: zeros where it has no bias."""
    return (layer.weight.data, layer.bias.data if layer.bias is not None else
            np.zeros(layer.out_features, dtype))


def _block_weights(blk, dtype):
    return BlockWeights(*_ln_params(blk.ln_1, dtype), *_linear_params(blk.attn.c_attn, dtype),
                        *_linear_params(blk.attn.c_proj, dtype), *_ln_params(blk.ln_2, dtype),
                        *_linear_params(blk.mlp.c_fc, dtype),
                        *_linear_params(blk.mlp.c_proj, dtype))
