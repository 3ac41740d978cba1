"""Multi-head attention with PyTorch's nn.MultiheadAttention parameter layout and masks.

Shape legend: B batch, Tq query positions, Tk key positions, E embed_dim, H heads,
D = E / H head size.

    Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v      (B, T, E)
    split into heads                                                         (B, H, T, D)
    head_h = softmax(Q_h K_h^T / sqrt(D) + M) V_h                            (B, H, Tq, D)
    out = concat_h(head_h) W_o^T + b_o                                       (B, Tq, E)

Parameters (names and shapes as PyTorch, so state dicts transfer one to one):
    in_proj_weight (3E, E) = [W_q; W_k; W_v], in_proj_bias (3E,), out_proj.weight (E, E),
    out_proj.bias (E,). With kdim or vdim != E: q_proj_weight (E, E), k_proj_weight
    (E, kdim), v_proj_weight (E, vdim) instead of in_proj_weight.

Masks, with nn.MultiheadAttention's conventions (note: opposite to SDPA's bool attn_mask):
    attn_mask         (Tq, Tk) or (B*H, Tq, Tk): bool True = NOT allowed, or float added
    key_padding_mask  (B, Tk): bool True = ignore that key (padding), or float added
    is_causal         query i sees keys j <= i (used when attn_mask is None; with an
                      attn_mask, the mask is used as given, which is the causal one then)
"""
from .. import functional as F
from ..backend import get_array_module
from ..ops import permute, reshape, transpose
from ..tensor import Tensor, data_of
from . import init
from .layers import Linear, _empty
from .module import Module


class MultiheadAttention(Module):
    """Multi-head attention (self, causal or cross). batch_first=True by default here:
    inputs are (B, T, E); with batch_first=False they are (T, B, E), as in PyTorch.

    forward(query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None,
            average_attn_weights=True, is_causal=False) -> (out, weights or None)

    need_weights defaults to False here (PyTorch: True), so the fused kernel runs unless the
    weights are asked for; they are then averaged over heads to (B, Tq, Tk) unless
    average_attn_weights=False (B, H, Tq, Tk).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=True, device=None,
                 dtype=None, generator=None):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not implemented")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout = dropout
        self.batch_first = batch_first
        self.generator = generator
        e = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _empty((3 * e, e), device, dtype)
        else:
            self.q_proj_weight = _empty((e, e), device, dtype)
            self.k_proj_weight = _empty((e, self.kdim), device, dtype)
            self.v_proj_weight = _empty((e, self.vdim), device, dtype)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = _empty((3 * e,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, device=device, dtype=dtype, generator=generator)
        self._reset_parameters(generator)

    def _reset_parameters(self, generator=None):
        """PyTorch's: xavier_uniform_ projections, zero biases (out_proj.weight keeps Linear's
        kaiming_uniform_ initialization)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, x, which):
        """x (B, T, Ein) -> (B, T, E): the q, k or v projection (which = 0, 1, 2)."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[which * e:(which + 1) * e]           # (E, E)
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[which]
        b = None
        if self.in_proj_bias is not None:
            b = self.in_proj_bias[which * e:(which + 1) * e]             # (E,)
        return F.linear(x, w, b)

    def _heads(self, x):
        b, t, _ = x.shape
        x = reshape(x, b, t, self.num_heads, self.head_dim)              # (B, T, H, D)
        return transpose(x, 1, 2)                                        # (B, H, T, D)

    def _masks(self, attn_mask, key_padding_mask, b, tq, tk, dtype, xp):
        """(additive float mask or None, bool key padding mask or None) for F.attention."""
        mask = None
        if attn_mask is not None:
            m = data_of(attn_mask)
            if m.dtype == bool:                                  # True = not allowed
                m = xp.where(m, dtype.type(-float("inf")), dtype.type(0))
            elif isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
                m = attn_mask                                    # keep it differentiable
            else:
                m = m.astype(dtype, copy=False)
            if m.ndim == 3:
                if m.shape[0] != b * self.num_heads:
                    raise ValueError(f"attn_mask of shape {tuple(m.shape)}: a 3-D mask must "
                                     f"be (batch * num_heads, Tq, Tk) = "
                                     f"({b * self.num_heads}, {tq}, {tk})")
                m = m.reshape(b, self.num_heads, tq, tk)         # (B, H, Tq, Tk)
            elif m.ndim != 2 or tuple(m.shape) != (tq, tk):
                raise ValueError(f"attn_mask of shape {tuple(m.shape)} must be (Tq, Tk) = "
                                 f"({tq}, {tk}) or (B*H, Tq, Tk)")
            mask = m
        kpm = None
        if key_padding_mask is not None:
            k = data_of(key_padding_mask)
            if tuple(k.shape) != (b, tk):
                raise ValueError(f"key_padding_mask of shape {tuple(k.shape)} must be "
                                 f"(batch, Tk) = ({b}, {tk})")
            if k.dtype == bool:
                kpm = k
            else:                                                # float: added to the scores
                pad = k.astype(dtype, copy=False).reshape(b, 1, 1, tk)
                mask = pad if mask is None else mask + pad
        return mask, kpm

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self_attention = query is key and key is value
        unbatched = query.ndim == 2
        if unbatched:  # (T, E): add a batch axis of 1
            query, key, value = (reshape(t, 1, *t.shape) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = data_of(key_padding_mask)[None]
        elif not self.batch_first:  # (T, B, E) -> (B, T, E)
            query, key, value = (transpose(t, 0, 1) for t in (query, key, value))
        b, tq, _ = query.shape
        tk = key.shape[1]
        if query.shape[-1] != self.embed_dim:
            raise ValueError(f"query of shape {tuple(query.shape)}: expected embed_dim "
                             f"{self.embed_dim} on the last axis")
        xp = get_array_module(query.data)
        mask, kpm = self._masks(attn_mask, key_padding_mask, b, tq, tk, query.dtype, xp)
        dropout_p = self.dropout if self.training else 0.0
        causal = bool(is_causal) and mask is None
        packed = (self_attention and self._qkv_same_embed_dim
                  and not need_weights and dropout_p == 0
                  and not (isinstance(mask, Tensor) and mask.requires_grad))
        weights = None
        if packed:  # self-attention: one GEMM for Q, K, V and one fused attention Function
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)   # (B, T, 3E)
            qkv = reshape(qkv, b, tq, 3, self.num_heads, self.head_dim)     # (B, T, 3, H, D)
            qkv = permute(qkv, 2, 0, 3, 1, 4)                               # (3, B, H, T, D)
            out = F.packed_self_attention(qkv, attn_mask=mask, is_causal=causal,
                                          key_padding_mask=kpm)           # (B, H, T, D)
        else:
            q = self._heads(self._project(query, 0))                     # (B, H, Tq, D)
            k = self._heads(self._project(key, 1))                       # (B, H, Tk, D)
            v = self._heads(self._project(value, 2))                     # (B, H, Tk, D)
            out, weights = F.attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                       is_causal=causal, key_padding_mask=kpm,
                                       generator=self.generator,
                                       need_weights=need_weights)        # (B, H, Tq, D)
        out = reshape(transpose(out, 1, 2), b, tq, self.embed_dim)       # (B, Tq, E)
        out = self.out_proj(out)                                         # (B, Tq, E)
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)                                    # (B, Tq, Tk)
        if unbatched:
            out = reshape(out, tq, self.embed_dim)                       # (Tq, E)
            if weights is not None:
                weights = reshape(weights, *weights.shape[1:])
        elif not self.batch_first:
            out = transpose(out, 0, 1)                                   # (Tq, B, E)
        return out, weights

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")
