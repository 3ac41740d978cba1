"""Transformer encoder and decoder layers, stacks and the full model (PyTorch's nn.Transformer*).

Shape legend: B batch, S source positions, T target positions, E d_model, F dim_feedforward.

Post-LN (norm_first=False, the original Transformer and the equations of seeds/003):

    encoder:  Z = LayerNorm(X + Attention(X))          H = LayerNorm(Z + FFN(Z))
    decoder:  Z = LayerNorm(Y + MaskedAttention(Y))    (softmax(Q K^T / sqrt(d_k) + M) V)
              C = LayerNorm(Z + CrossAttention(Z, H))  (queries from Z, keys/values from H)
              O = LayerNorm(C + FFN(C))
    FFN(x) = linear2(dropout(activation(linear1(x))))

Pre-LN (norm_first=True, GPT-2's form): X = X + Attention(LayerNorm(X)), and so on.
Dropout (dropout1, 2, 3) is applied to each sublayer's output before the residual addition.

Positional information (Vaswani et al., 2017), added to the token embeddings:
    PE(pos, 2i) = sin(pos / 10000^(2i / E)),   PE(pos, 2i + 1) = cos(pos / 10000^(2i / E))
or a learned table of max_len x E (GPT-2's wpe).

Parameter names match PyTorch's (``layers.0.self_attn.in_proj_weight``, ``linear1.weight``,
``norm1.weight``, ``encoder.norm.bias``, ...), so state dicts transfer one to one.
batch_first defaults to True here (PyTorch: False); batch_first=False takes (T, B, E).
"""
import copy
import math

import numpy as np

from .. import functional as F
from ..backend import to_device
from ..tensor import Tensor
from . import init
from .attention import MultiheadAttention
from .layers import Dropout, LayerNorm, Linear, _empty
from .containers import ModuleList
from .module import Module


def _activation(activation):
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation):
        return activation
    raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")


# ----- positions ----------------------------------------------------------------------------

def sinusoidal_position_encoding(max_len, d_model, dtype=np.float32):
    """The (max_len, d_model) table PE(pos, 2i) = sin(pos w_i), PE(pos, 2i+1) = cos(pos w_i),
    w_i = 10000^(-2i / d_model), as a NumPy array."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]                  # (max_len, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)                   # (ceil(E/2),)
    angle = pos * np.exp(-math.log(10000.0) * two_i / d_model)           # (max_len, ceil(E/2))
    pe = np.zeros((max_len, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, :d_model // 2])
    return pe.astype(dtype)


class SinusoidalPositionalEncoding(Module):
    """x (B, T, E) -> dropout(x + PE[:T]); the table is a fixed, non-persistent buffer."""

    def __init__(self, d_model, max_len=5000, dropout=0.0, device=None, dtype=None,
                 generator=None):
        super().__init__()
        table = sinusoidal_position_encoding(max_len, d_model, np.dtype(dtype or np.float32))
        self.register_buffer("pe", Tensor(to_device(table, device or "cpu")), persistent=False)
        self.dropout = Dropout(dropout, generator=generator)

    def forward(self, x):
        t = x.shape[-2]
        if t > self.pe.shape[0]:
            raise ValueError(f"sequence length {t} exceeds max_len {self.pe.shape[0]}")
        return self.dropout(x + self.pe.data[:t])                        # (B, T, E)


class LearnedPositionalEmbedding(Module):
    """x (B, T, E) -> x + weight[:T], a trained (max_len, E) table (GPT-2's wpe).
    Initialization N(0, std^2), std = 0.02 as in GPT-2."""

    def __init__(self, max_len, d_model, std=0.02, device=None, dtype=None, generator=None):
        super().__init__()
        self.weight = _empty((max_len, d_model), device, dtype)
        init.normal_(self.weight, 0.0, std, generator=generator)

    def forward(self, x):
        t = x.shape[-2]
        if t > self.weight.shape[0]:
            raise ValueError(f"sequence length {t} exceeds max_len {self.weight.shape[0]}")
        return x + self.weight[:t]                                       # (B, T, E)


class PositionwiseFeedForward(Module):
    """FFN(x) = linear2(dropout(activation(linear1(x)))),  (..., E) -> (..., F) -> (..., E)."""

    def __init__(self, d_model, dim_feedforward=2048, dropout=0.0, activation="relu",
                 bias=True, device=None, dtype=None, generator=None):
        super().__init__()
        kw = dict(bias=bias, device=device, dtype=dtype, generator=generator)
        self.linear1 = Linear(d_model, dim_feedforward, **kw)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, **kw)
        self.activation = _activation(activation)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


# ----- layers -------------------------------------------------------------------------------

class TransformerEncoderLayer(Module):
    """Self-attention and feed-forward sublayers with residuals and LayerNorm (see the module
    docstring). forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=True, norm_first=False, bias=True,
                 device=None, dtype=None, generator=None):
        super().__init__()
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                            batch_first=batch_first, generator=generator, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, generator=generator, **kw)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, generator=generator, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1 = Dropout(dropout, generator=generator)
        self.dropout2 = Dropout(dropout, generator=generator)
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:  # pre-LN: x + f(LN(x))
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:                # post-LN: Z = LN(X + Attention(X)),  H = LN(Z + FFN(Z))
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(Module):
    """Masked self-attention, cross-attention on the encoder output (memory) and a
    feed-forward sublayer, each with a residual and LayerNorm (see the module docstring)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=True, norm_first=False, bias=True,
                 device=None, dtype=None, generator=None):
        super().__init__()
        kw = dict(bias=bias, device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                            batch_first=batch_first, generator=generator, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                                 batch_first=batch_first, generator=generator,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, generator=generator, **kw)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, generator=generator, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1 = Dropout(dropout, generator=generator)
        self.dropout2 = Dropout(dropout, generator=generator)
        self.dropout3 = Dropout(dropout, generator=generator)
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask,
                                   tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:  # Z = LN(Y + MaskedAttn(Y)), C = LN(Z + CrossAttn(Z, H)), O = LN(C + FFN(C))
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask,
                                              tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask,
                                               memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x


# ----- stacks and the full model --------------------------------------------------------------

def _clones(layer, n):
    """n deep copies of ``layer`` (equal initial weights, as PyTorch), sharing its dropout
    generators: copies of one random stream would draw the same masks in every layer."""
    shared = {}
    for m in layer.modules():
        gen = getattr(m, "generator", None)
        if gen is not None:
            shared[id(gen)] = gen
    return ModuleList([copy.deepcopy(layer, dict(shared)) for _ in range(n)])


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer, then an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """num_layers copies of decoder_layer, then an optional final norm."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder Transformer (PyTorch's nn.Transformer; batch_first=True here).

    forward(src (B, S, E), tgt (B, T, E), ...) -> (B, T, E). Parameters with more than one
    dim are re-initialized with xavier_uniform_, as PyTorch does.
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=True, norm_first=False,
                 bias=True, device=None, dtype=None, generator=None):
        super().__init__()
        kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                  layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                  norm_first=norm_first, bias=bias, device=device, dtype=dtype,
                  generator=generator)
        norm_kw = dict(eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **kw),
                                              num_encoder_layers, LayerNorm(d_model, **norm_kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **kw),
                                              num_decoder_layers, LayerNorm(d_model, **norm_kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p, generator=generator)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=False, tgt_is_causal=False,
                memory_is_causal=False):
        b_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[b_axis] != tgt.shape[b_axis]:
            raise ValueError(f"the batch size of src {tuple(src.shape)} and tgt "
                             f"{tuple(tgt.shape)} must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"the feature size of src {tuple(src.shape)} and tgt "
                             f"{tuple(tgt.shape)} must be d_model={self.d_model}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) float mask: 0 on and below the diagonal, -inf above (future positions)."""
        mask = np.triu(np.full((sz, sz), -np.inf), k=1).astype(np.dtype(dtype or np.float32))
        return Tensor(to_device(mask, device or "cpu"))
