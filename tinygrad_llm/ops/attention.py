"""Scaled dot-product attention: the composite twin, then the Functions that run the kernel.

    out = softmax(Q K^T * scale + M) V,   per batch and head

Read the twin first: two matmuls, the mask added to the scores, a softmax. autograd
differentiates it through those ops. It is also the path F.scaled_dot_product_attention takes
for what the kernel does not do: dropout on the attention weights, a mask that needs a
gradient, V of another head size. The Functions keep only one number per query row (the
log-sum-exp of its scores) instead of the (Tq, Tk) weights, and must agree with the twin in
value and gradient (tests/test_op_attention.py). Their second derivatives (create_graph=True)
are the twin's: both Functions declare it as ``twin`` (backprop.py differentiates through it).

Kernels: kernels/attention.py (NumPy reference, numba CPU tiles, numba CUDA).

Shape legend: B batch, H heads, Tq query and Tk key positions, D head size.
"""
import math

import numpy as np

from ..autograd import Function
from ..kernels import attention as kernel
from ..kernels.fastnp import array_module
from .matmul import matmul
from .shape import transpose
from .softmax import masked_softmax_composite, softmax_composite


def scaled_dot_product_attention_composite(q, k, v, mask=None, scale=None, dropout=None,
                                           softmax_fn=softmax_composite):
    """softmax(Q K^T * scale + mask) V.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv). ``mask`` is an additive float Tensor or
    array broadcastable to (..., Tq, Tk), -inf where a key is hidden. ``dropout`` is None or
    a function applied to the attention weights. ``softmax_fn`` defaults to the composite
    softmax; F passes the fused one, which gives zeros (not NaN) for a fully masked row.
    Returns (out (..., Tq, Dv), weights (..., Tq, Tk)); the weights are those multiplied with
    V, after dropout (as PyTorch's nn.MultiheadAttention returns them).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = matmul(q, transpose(k, -2, -1)) * scale                  # (..., Tq, Tk)
    if mask is not None:
        s = s + mask
    p = softmax_fn(s, -1)                                         # (..., Tq, Tk)
    if dropout is not None:
        p = dropout(p)
    return matmul(p, v), p                                        # (..., Tq, Dv)


def kernel_mask(xp, dtype, tq, tk, causal=False, key_padding_mask=None, attn_mask=None):
    """The kernel's masks as one additive (B or 1, H or 1, Tq, Tk) array, or None: attn_mask,
    plus -inf where a key is hidden (causal: key j > i + Tk - Tq, bottom-right aligned;
    key_padding_mask (B, Tk): True = ignore that key)."""
    total = attn_mask
    if causal:
        visible = xp.arange(tk)[None, :] <= xp.arange(tq)[:, None] + (tk - tq)   # (Tq, Tk)
        hidden = xp.where(visible, dtype.type(0), dtype.type(-np.inf))
        total = hidden if total is None else total + hidden
    if key_padding_mask is not None:
        pad = xp.where(key_padding_mask, dtype.type(-np.inf), dtype.type(0))    # (B, Tk)
        pad = pad[:, None, None, :]                                             # (B, 1, 1, Tk)
        total = pad if total is None else total + pad
    return total


def _attention_twin(q, k, v, causal=False, key_padding_mask=None, attn_mask=None, scale=None,
                    impl="auto"):
    """The composite with the kernel's arguments (a row with no visible key gives zeros)."""
    mask = kernel_mask(array_module(q.data), q.dtype, q.shape[-2], k.shape[-2], causal,
                       key_padding_mask, attn_mask)
    out, _ = scaled_dot_product_attention_composite(q, k, v, mask, scale,
                                                    softmax_fn=masked_softmax_composite)
    return out


def _packed_attention_twin(qkv, causal=False, key_padding_mask=None, attn_mask=None,
                           scale=None, impl="auto"):
    return _attention_twin(qkv[0], qkv[1], qkv[2], causal, key_padding_mask, attn_mask, scale)


class ScaledDotProductAttention(Function):
    """out = softmax(Q K^T * scale + M) V, per batch and head; Q (B, H, Tq, D), K, V (B, H, Tk, D).

    M combines the causal mask (bottom-right aligned), the key padding mask (True = ignore)
    and an additive float mask; it is a constant (no gradient). With P = softmax(S) and
    Di = sum_d dO_id O_id:
        dV = P^T dO,   dP = dO V^T,   dS = P * (dP - Di),   dQ = dS K scale,   dK = dS^T Q scale
    The kernel keeps only lse = logsumexp of each score row and rebuilds P from it. A row
    with no visible key gives out = 0 and no gradient (no NaN).
    """

    twin = staticmethod(_attention_twin)

    def forward(self, q, k, v, causal=False, key_padding_mask=None, attn_mask=None,
                scale=None, impl="auto"):
        out, lse = self._attend(q, k, v, causal, key_padding_mask, attn_mask, scale, impl)
        # q, k, v as given, often strided views of one projection (the CPU kernel reads them
        # in place; other paths copy them, and those copies are not kept)
        self.save_for_backward(q, k, v, out, lse)
        return out

    def _attend(self, q, k, v, causal, key_padding_mask, attn_mask, scale, impl):
        """(out, lse) from the kernel, with out laid out in memory as q is: when q is a
        (B, H, T, D) view of a (B, T, H, D) projection, merging the heads back into (B, T, C)
        is then a view, not a copy."""
        self.opts = dict(causal=causal, key_padding_mask=key_padding_mask,
                         attn_mask=attn_mask, scale=scale, impl=impl)
        out = array_module(q).empty_like(q, order="K")
        return kernel.attention_forward(q, k, v, out=out, **self.opts)  # lse (B, H, Tq)

    def backward(self, g):
        q, k, v, out, lse = self.saved
        xp = array_module(g)                 # each gradient laid out as its input (see above)
        return kernel.attention_backward(q, k, v, out, lse, g, dq=xp.empty_like(q, order="K"),
                                         dk=xp.empty_like(k, order="K"),
                                         dv=xp.empty_like(v, order="K"), **self.opts)


class PackedSelfAttention(ScaledDotProductAttention):
    """ScaledDotProductAttention on one packed tensor qkv (3, B, H, T, D) = stack(Q, K, V).

    Self-attention computes Q, K, V with one GEMM (B, T, 3E) and views them as (3, B, H, T, D);
    taking that tensor whole spares the three slices (each a zero-filled gradient of the full
    size in backward): the gradient dqkv is written by the kernel straight into one buffer.
    """

    twin = staticmethod(_packed_attention_twin)

    def forward(self, qkv, causal=False, key_padding_mask=None, attn_mask=None, scale=None,
                impl="auto"):
        out, lse = self._attend(qkv[0], qkv[1], qkv[2], causal, key_padding_mask, attn_mask,
                                scale, impl)
        self.save_for_backward(qkv, out, lse)           # the input itself (see above)
        return out

    def backward(self, g):
        qkv, out, lse = self.saved
        dqkv = array_module(g).empty_like(qkv, order="K")     # (3, B, H, T, D), laid out as qkv
        kernel.attention_backward(qkv[0], qkv[1], qkv[2], out, lse, g, dq=dqkv[0],
                                  dk=dqkv[1], dv=dqkv[2], **self.opts)
        return dqkv
