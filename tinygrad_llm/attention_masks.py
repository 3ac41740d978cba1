"""What the attention functions of functional.py do before calling the op: masks and heads.

A mask may be bool (True = this key takes part, as in scaled_dot_product_attention) or an
additive float array (-inf hides a key), and ``is_causal`` hides the keys after each query,
aligned top-left (PyTorch's) or bottom-right (a query block at the end of a KV cache). They all
become one additive float mask, or the kernel's own causal flag when it can serve, plus a bool
key-padding mask. Grouped-query attention repeats each key/value head for its query heads.
"""
import numpy as np

from .backend import get_array_module
from .tensor import Tensor, data_of


def float_mask(attn_mask, xp, dtype):
    """(additive float array or None, Tensor needing grad or None) from a bool/float mask."""
    if attn_mask is None:
        return None, None
    m = xp.asarray(data_of(attn_mask))                 # a NumPy mask moves to a CuPy query
    if m.dtype == bool:  # SDPA's convention: True = this key takes part
        return xp.where(m, dtype.type(0), dtype.type(-np.inf)), None
    if m.dtype.kind != "f":
        raise TypeError(f"attn_mask must be bool or float, got dtype {m.dtype}")
    if isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
        return None, attn_mask
    return m.astype(dtype, copy=False), None


def causal_mask(xp, tq, tk, dtype, offset=0):
    """Additive (Tq, Tk) mask: query i sees keys j <= i + offset (0: PyTorch's is_causal,
    aligned top-left; Tk - Tq: aligned bottom-right, the last query sees every key)."""
    allowed = xp.arange(tk)[None, :] <= xp.arange(tq)[:, None] + offset
    return xp.where(allowed, dtype.type(0), dtype.type(-np.inf))


def to_4d(mask, nd):
    """An additive mask broadcastable to (*lead, Tq, Tk) with len(lead) = nd - 2, as 4-D."""
    if mask.ndim > nd:
        raise ValueError(f"attn_mask of shape {tuple(mask.shape)} has more axes than the "
                         f"query ({nd})")
    mask = mask.reshape((1,) * (nd - mask.ndim) + tuple(mask.shape))
    if nd == 3:
        return mask[:, None]                                      # (B, 1, Tq, Tk)
    if nd == 2:
        return mask[None, None]                                   # (1, 1, Tq, Tk)
    return mask


def attention_masks(query, tk, attn_mask, is_causal, key_padding_mask,
                     causal_align="top-left"):
    """(additive float mask array or None, float mask Tensor needing grad or None, causal flag
    for the kernel, bool key padding mask or None), checked, for a query (..., Tq, E)."""
    xp = get_array_module(query.data)
    dtype, nd, tq = query.dtype, query.ndim, query.shape[-2]
    if attn_mask is not None and is_causal:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal, "
                         "not both (as in PyTorch)")
    mask, mask_t = float_mask(attn_mask, xp, dtype)
    if causal_align not in ("top-left", "bottom-right"):
        raise ValueError(f"causal_align must be 'top-left' or 'bottom-right', got "
                         f"{causal_align!r}")
    causal = bool(is_causal)
    if causal and tq != tk and causal_align == "top-left":
        mask, causal = causal_mask(xp, tq, tk, dtype), False  # the kernel's is bottom-right
    kpm = None
    if key_padding_mask is not None:
        kpm = xp.asarray(data_of(key_padding_mask))
        if kpm.dtype != bool:
            raise TypeError(f"key_padding_mask must be bool (True = ignore that key), got "
                            f"dtype {kpm.dtype}")
        if nd < 3 or kpm.shape != (query.shape[0], tk):
            raise ValueError(f"key_padding_mask of shape {tuple(kpm.shape)} must be "
                             f"(batch, S) = ({query.shape[0] if nd >= 3 else '?'}, {tk}) for "
                             f"a query of shape {tuple(query.shape)}")
    return mask, mask_t, causal, kpm


def repeat_kv_heads(query, key, value):
    """Grouped-query attention: each key/value head serves H_q / H_kv query heads in a row."""
    hq, hk = query.shape[-3], key.shape[-3]
    if hq % hk or value.shape[-3] != hk:
        raise ValueError(f"enable_gqa: the query's {hq} heads must be a multiple of the key's "
                         f"and value's heads, got {hk} and {value.shape[-3]}")
    n = hq // hk
    out = []
    for t in (key, value):    # (..., Hk, S, E) -> (..., Hk, n, S, E) -> (..., Hq, S, E)
        lead = tuple(t.shape[:-3])
        t = t.unsqueeze(-3).expand(*lead, hk, n, *t.shape[-2:])
        out.append(t.reshape(*lead, hq, *t.shape[-2:]))
    return out
