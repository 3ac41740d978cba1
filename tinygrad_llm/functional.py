"""The functional interface, ``import tinygrad_llm.functional as F`` (PyTorch's names).

Everything here is a plain function of tensors: it checks its arguments (bad input raises a
ValueError, IndexError or TypeError naming the shapes, ids or dtypes), arranges the shapes and
calls one Function from ``tinygrad_llm.ops`` where the formulas live:

    softmax, log_softmax            ops/softmax.py
    layer_norm                      ops/layer_norm.py
    scaled_dot_product_attention    ops/attention.py
    cross_entropy                   ops/cross_entropy.py
    linear                          ops/matmul.py
    embedding                       ops/indexing.py
    dropout                         ops/elementwise.py
    relu, gelu, tanh, sigmoid, ...  ops/activation.py

The ops with a kernel take ``impl=`` ("auto", "ref", "cpu", "cuda"), passed to the kernels'
dispatch; the environment variable TINYGRAD_LLM_KERNELS=ref forces the NumPy reference
everywhere. Each of their files also holds the unfused twin, made of primitive ops.
"""
import math

import numpy as np

from .backend import get_array_module
from .creation import _rng
from .ops import (elu, hardsigmoid, hardswish, leaky_relu, logsigmoid, normalize, one_hot,
                  pad, permute, relu, reshape, sigmoid, silu, softplus, tanh)
from .ops import attention as _attention
from .ops import cross_entropy as _cross_entropy
from .ops import gelu as _gelu
from .ops import layer_norm as _layer_norm
from .ops import log_softmax as _log_softmax
from .ops import softmax as _softmax
from .ops.elementwise import Dropout
from .ops.gelu_linear import gelu_linear as _gelu_linear
from .ops.layer_norm_linear import layer_norm_linear as _layer_norm_linear
from .ops.indexing import Embedding
from .ops.matmul import Linear
from .tensor import Tensor, data_of
from .attention_masks import attention_masks, causal_mask, repeat_kv_heads, to_4d

__all__ = ["attention", "cross_entropy", "dropout", "elu", "embedding", "gelu", "hardsigmoid",
           "hardswish", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsigmoid",
           "normalize", "one_hot", "packed_self_attention", "pad", "relu",
           "scaled_dot_product_attention", "sigmoid", "silu", "softmax", "softplus", "tanh"]


# ----- activations ------------------------------------------------------------------------

def gelu(input, approximate="none"):
    """GELU: x Phi(x) (approximate='none', exact, through erf) or GPT-2's tanh form ('tanh')."""
    return _gelu(input, approximate=approximate)


# ----- softmax ------------------------------------------------------------------------------

def softmax(input, dim=None, dtype=None, *, impl="auto"):
    """softmax(x)_i = e^{x_i} / sum_j e^{x_j} along ``dim`` (fused; an all -inf row -> 0)."""
    return _softmax(_cast(input, dim, dtype, "softmax"), dim, impl=impl)


def _cast(x, dim, dtype, name):
    if dim is None:
        raise TypeError(f"{name}: pass dim explicitly (PyTorch's implicit choice of dim is "
                        f"deprecated)")
    return x if dtype is None else x.to(dtype)


def log_softmax(input, dim=None, dtype=None, *, impl="auto"):
    """log_softmax(x)_i = x_i - logsumexp(x) along ``dim`` (fused)."""
    return _log_softmax(_cast(input, dim, dtype, "log_softmax"), dim, impl=impl)


# ----- layer norm ---------------------------------------------------------------------------

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, impl="auto"):
    """Normalize over the trailing ``normalized_shape`` axes, then y = xhat * weight + bias."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing "
                         f"axes of the input of shape {tuple(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {tuple(p.shape)}, expected {shape}")
    c = math.prod(shape)
    x = input if k == 1 else reshape(input, *input.shape[:input.ndim - k], c)   # (..., C)
    w = weight if (weight is None or k == 1) else reshape(weight, c)            # (C,)
    b = bias if (bias is None or k == 1) else reshape(bias, c)                  # (C,)
    y = _layer_norm(x, w, b, eps=eps, impl=impl)
    return y if k == 1 else reshape(y, *input.shape)


# ----- attention ----------------------------------------------------------------------------

def attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
              key_padding_mask=None, generator=None, need_weights=False, impl="auto",
              causal_align="top-left"):
    """scaled_dot_product_attention that can also return the attention weights.

    Returns (out, weights or None). The fused kernel runs unless the weights are needed,
    dropout_p > 0, a float attn_mask requires grad, V has another head size, or the batch
    axes of q, k, v differ (then the composite twin runs, with the fused softmax so that a
    fully masked row still gives zeros).
    """
    xp = get_array_module(query.data)
    dtype = query.dtype
    nd = query.ndim
    if nd < 2 or key.ndim != nd or value.ndim != nd:
        raise ValueError(f"scaled_dot_product_attention: query, key, value need the same "
                         f"number (>= 2) of dims, got shapes {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: expected query (..., L, E), key "
                         f"(..., S, E), value (..., S, Ev); got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    tq, tk = query.shape[-2], key.shape[-2]
    mask, mask_t, causal, kpm = attention_masks(query, tk, attn_mask, is_causal,
                                                 key_padding_mask, causal_align)
    fused = (not need_weights and dropout_p == 0 and mask_t is None and nd <= 4
             and value.shape[-1] == query.shape[-1]
             and query.shape[:-2] == key.shape[:-2] == value.shape[:-2])
    if fused:
        lead = query.shape[:-2]
        shape4 = (1,) * (4 - nd) + tuple(lead)
        if nd == 3:
            shape4 = (lead[0], 1)
        q4, k4, v4 = (t if nd == 4 else reshape(t, *shape4, *t.shape[-2:])
                      for t in (query, key, value))
        m4 = None if mask is None else to_4d(mask, nd)
        out = _attention.ScaledDotProductAttention.apply(
            q4, k4, v4, causal=causal, key_padding_mask=kpm, attn_mask=m4, scale=scale,
            impl=impl)                                            # (B, H, Tq, D)
        return (out if nd == 4 else reshape(out, *lead, tq, value.shape[-1])), None
    # Composite path: one additive mask holding everything, the fused softmax for safety
    total = mask
    if causal:
        cm = causal_mask(xp, tq, tk, dtype, offset=tk - tq)    # bottom-right, as the kernel's
        total = cm if total is None else total + cm
    if kpm is not None:
        pad = xp.where(kpm, dtype.type(-np.inf), dtype.type(0))
        pad = pad.reshape((kpm.shape[0],) + (1,) * (nd - 2) + (tk,))   # (B, 1.., 1, S)
        total = pad if total is None else total + pad
    if mask_t is not None:
        total = mask_t if total is None else mask_t + total
    drop = None
    if dropout_p > 0:
        def drop(p):
            return dropout(p, dropout_p, True, generator=generator)
    return _attention.scaled_dot_product_attention_composite(
        query, key, value, total, scale, drop,
        softmax_fn=lambda s, dim: softmax(s, dim, impl=impl))


def packed_self_attention(qkv, attn_mask=None, is_causal=False, key_padding_mask=None,
                          scale=None, impl="auto"):
    """Fused self-attention of a packed qkv (3, B, H, T, D) = stack(Q, K, V) -> (B, H, T, D).

    The masks are those of scaled_dot_product_attention; a float attn_mask must not need a
    gradient here (use scaled_dot_product_attention for that). One Function, so the gradient
    of Q, K and V comes back as one (3, B, H, T, D) array.
    """
    if qkv.ndim != 5 or qkv.shape[0] != 3:
        raise ValueError(f"packed_self_attention: qkv must be (3, B, H, T, D), got "
                         f"{tuple(qkv.shape)}")
    q = Tensor._wrap(qkv.data[0])  # (B, H, T, D) view, read for its shape and dtype
    mask, mask_t, causal, kpm = attention_masks(q, q.shape[-2], attn_mask, is_causal,
                                                 key_padding_mask)
    if mask_t is not None:
        raise ValueError("packed_self_attention: attn_mask requires grad; use "
                         "scaled_dot_product_attention")
    m4 = None if mask is None else to_4d(mask, 4)
    return _attention.PackedSelfAttention.apply(qkv, causal=causal, key_padding_mask=kpm,
                                            attn_mask=m4, scale=scale, impl=impl)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, *, key_padding_mask=None,
                                 generator=None, impl="auto", causal_align="top-left",
                                 enable_gqa=False):
    """softmax(Q K^T * scale + M) V, with PyTorch's arguments and semantics.

    query (..., L, E), key (..., S, E), value (..., S, Ev).
    attn_mask: bool (True = this key takes part) or float (added to the scores), broadcastable
        to (..., L, S). is_causal: query i sees keys j <= i (not together with attn_mask).
    key_padding_mask (extra): bool (batch, S), True = ignore that key (nn.MultiheadAttention's
        convention). causal_align (extra): with is_causal and L != S, "top-left" (PyTorch's:
        query i sees keys j <= i) or "bottom-right" (query i sees keys j <= i + S - L: the
        queries are the last L positions, as when decoding with a KV cache).
        enable_gqa: key and value may have fewer heads than query (dim -3), each shared by
        a group of query heads. scale: default 1 / sqrt(E). dropout_p: dropout on the
        attention weights (always applied when > 0, as in PyTorch; pass 0 in eval mode).
    A query row that sees no key gives 0 output and 0 gradient (PyTorch also gives 0 there).
    """
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        key, value = repeat_kv_heads(query, key, value)
    out, _ = attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                       key_padding_mask, generator, False, impl, causal_align)
    return out


# ----- cross-entropy ------------------------------------------------------------------------

def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, impl="auto"):
    """Cross-entropy of logits and class indices, as torch.nn.functional.cross_entropy.

    input (N, C) with target (N,); input (N, C, d1, ...) with target (N, d1, ...); input (C,)
    with a 0-d target. weight: optional (C,) class weights. Rows whose target equals
    ignore_index contribute nothing (and 'mean' divides by the kept rows' weight; with every
    row ignored it gives 0 and no gradient, where PyTorch gives NaN). label_smoothing e mixes
    the one-hot target with the uniform 1/C. Targets outside [0, C) other than ignore_index
    raise IndexError (-1 is not wrapped around). A float target of the input's shape holds
    class probabilities (soft labels).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"cross_entropy: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    xp = get_array_module(input.data)
    t = xp.asarray(data_of(target))                    # NumPy targets move to CuPy logits
    if t.dtype.kind == "f":
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices (an integer dtype) "
                        f"or class probabilities (a float dtype), got {t.dtype}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dim (C,)")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(f"cross_entropy: target of shape {tuple(t.shape)} does not match the "
                         f"input of shape {tuple(input.shape)} (expected target shape "
                         f"{expected})")
    if input.ndim == 1:
        x2 = reshape(input, 1, c)                                 # (1, C)
    elif input.ndim == 2:
        x2 = input                                                # (N, C)
    else:  # (N, C, d1, ..) -> (N, d1, .., C) -> (N * d1 * .., C)
        x2 = reshape(permute(input, 0, *range(2, input.ndim), 1), -1, c)
    t2 = t.reshape(-1).astype(np.int64, copy=False)               # (rows,)
    bad = (t2 != ignore_index) & ((t2 < 0) | (t2 >= c))
    if bool(bad.any()):
        value = int(t2[xp.argmax(bad)])
        raise IndexError(f"cross_entropy: target {value} is out of bounds for {c} classes "
                         f"(valid: 0..{c - 1}, or ignore_index={ignore_index})")
    w = None
    if weight is not None:
        w = xp.asarray(data_of(weight), dtype=input.dtype)
        if w.shape != (c,):
            raise ValueError(f"cross_entropy: weight has shape {tuple(w.shape)}, expected "
                             f"({c},)")
    loss = _cross_entropy.cross_entropy(x2, t2, w, ignore_index=ignore_index,
                                        reduction=reduction, label_smoothing=label_smoothing,
                                        impl=impl)
    return reshape(loss, *t.shape) if reduction == "none" else loss


def _soft_cross_entropy(input, target, weight, reduction, label_smoothing):
    """Class probabilities y of the input's shape (soft labels):

        l = -sum_c w_c y_c log_softmax(x)_c,   y <- (1 - e) y + e / C with label_smoothing e

    and 'mean' divides by the number of rows (as PyTorch; there is no ignore_index)."""
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dim (C,)")
    dim = 0 if input.ndim == 1 else 1
    if not isinstance(target, Tensor):
        target = Tensor._wrap(get_array_module(input.data).asarray(target, dtype=input.dtype))
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: target of class probabilities has shape "
                         f"{tuple(target.shape)}, expected the input's {tuple(input.shape)}")
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    c = input.shape[dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    terms = target * log_softmax(input, dim=dim)                  # (N, C, d1..)
    if weight is not None:
        w = weight if isinstance(weight, Tensor) else Tensor._wrap(
            get_array_module(input.data).asarray(weight, dtype=input.dtype))
        if tuple(w.shape) != (c,):
            raise ValueError(f"cross_entropy: weight has shape {tuple(w.shape)}, expected "
                             f"({c},)")
        terms = terms * reshape(w, *[c if i == dim else 1 for i in range(input.ndim)])
    loss = -terms.sum(dim)                                        # (N, d1..)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / (loss.numel() if loss.ndim else 1)
    return loss


# ----- linear, embedding, dropout -----------------------------------------------------------

def linear(input, weight, bias=None):
    """y = x W^T + b with W (out_features, in_features), as torch.nn.functional.linear."""
    _check_linear(input, weight, bias, "linear")
    return Linear.apply(input, weight, bias)


def gelu_linear(input, weight, bias=None, approximate="none"):
    """linear(gelu(input, approximate), weight, bias) as one op: the same values and
    gradients, but backward computes gelu(input) again instead of keeping it (a transformer
    MLP's widest activation; ops/gelu_linear.py)."""
    _check_linear(input, weight, bias, "gelu_linear")
    return _gelu_linear(input, weight, bias, approximate)


def layer_norm_linear(input, ln_weight, ln_bias, weight, bias=None, eps=1e-5):
    """linear(layer_norm(input, (C,), ln_weight, ln_bias, eps), weight, bias) as one op: the
    same values and gradients, but backward normalizes input again instead of keeping the
    normalized values (ops/layer_norm_linear.py). ln_weight, ln_bias: (C,) or None."""
    if input.ndim == 0:
        raise ValueError("layer_norm_linear: the input needs at least one axis (C features)")
    c = input.shape[-1]
    for name, p in (("ln_weight", ln_weight), ("ln_bias", ln_bias)):
        if p is not None and tuple(p.shape) != (c,):
            raise ValueError(f"layer_norm_linear: {name} has shape {tuple(p.shape)}, expected "
                             f"({c},) for an input of shape {tuple(input.shape)}")
    _check_linear(input, weight, bias, "layer_norm_linear")
    return _layer_norm_linear(input, ln_weight, ln_bias, weight, bias, eps)


def _check_linear(input, weight, bias, name):
    if weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} and weight of shape "
                         f"{tuple(weight.shape)} (out, in) do not match")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"{name}: bias has shape {tuple(bias.shape)}, expected "
                         f"({weight.shape[0]},)")


def check_ids(ids, num_embeddings, name="embedding"):
    """The integer id array of ``ids``; TypeError for floats, IndexError for a bad id."""
    xp = get_array_module(ids)
    ids = ids if hasattr(ids, "dtype") else xp.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name}: ids must be integers (int64), got dtype {ids.dtype}")
    if ids.size:
        lo, hi = (int(v) for v in xp.stack([ids.min(), ids.max()]).tolist())  # one sync
        if lo < 0 or hi >= num_embeddings:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: id {bad} is out of range for num_embeddings="
                             f"{num_embeddings} (valid ids: 0..{num_embeddings - 1}; negative "
                             f"ids are not wrapped around)")
    return ids


def embedding(input, weight, padding_idx=None):
    """y[...] = weight[input[...]]; the padding_idx row gets no gradient."""
    ids = check_ids(data_of(input), weight.shape[0])
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return Embedding.apply(weight, ids, padding_idx)


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training);
    the identity when not training or p = 0. The mask comes from ``generator``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    xp = get_array_module(input.data)
    keep = _rng(generator).random(input.shape) >= p                  # drawn on the CPU
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    multiplier = xp.asarray(keep.astype(input.dtype) * input.dtype.type(scale))
    return Dropout.apply(input, multiplier)
