"""Scaled dot-product attention, out = softmax(Q K^T * scale + M) V: forward and backward.

Shape legend: B batch, H heads, Tq query positions, Tk key positions, D head size.
    q (B, H, Tq, D); k, v (B, H, Tk, D); out, dout (B, H, Tq, D); lse (B, H, Tq)

Masks (all optional, combined):
  causal            query i sees key j only when j <= i + (Tk - Tq): bottom-right aligned, as
                    with a KV cache (the last query sees every key). With Tq == Tk this is the
                    usual lower triangle. With Tq > Tk the first Tq - Tk rows see no key.
  key_padding_mask  bool (B, Tk), True = padded key, ignored (PyTorch MHA convention).
  attn_mask         additive float mask broadcastable to (B, H, Tq, Tk); may hold -inf.
                    (A boolean attn_mask is refused: its meaning differs between PyTorch APIs.)
  scale             defaults to 1 / sqrt(D).

A row with no visible key (fully masked) gives out = 0 and lse = -inf, and contributes zero to
dq, dk, dv: no NaN anywhere. Masking uses -inf and boolean selects, never -1e10.

Forward returns (out, lse), lse = log sum_j exp(s_ij) per query row, the only statistic the
backward needs to rebuild P = exp(S - lse) tile by tile. The CPU and CUDA kernels work in
tiles with an online softmax (running max and running sum) and never store a Tq x Tk matrix:
memory grows with T, not T^2. The reference materializes S (it is the readable specification).

Backward (with Di = sum_d dout_id * out_id = sum_j P_ij dP_ij):
    dV = P^T dO        dP = dO V^T        dS = P * (dP - Di)        dQ = dS K * scale
    dK = dS^T Q * scale

Order: (a) reference here, (b) numba CPU kernels (attention_cpu.py), (c) CUDA kernels
(attention_cuda.py), then ``attention_forward`` / ``attention_backward`` here.
"""
import math

import numpy as np

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._blas import single_threaded_blas
from ._cblas import SMALL_GEMM
from .attention_cpu import BLOCK_K, BLOCK_Q, _attn_bwd_cpu, _attn_fwd_cpu
from .attention_cuda import attention_backward_cuda, attention_forward_cuda

_MIN_WORK_PER_THREAD = 1 << 20  # multiply-adds below which a thread hand-off costs more
# Strided heads are read in place from this size on; smaller ones are copied: the kernels'
# row loops over strided arrays do not vectorize, which costs more than a copy of a small
# array (GPT micro step, B2 H4 T32 D16: attention fwd+bwd 0.98 ms strided, 0.69 copied)
_MIN_STRIDED_BYTES = 1 << 18


# ---------------------------------------------------------------------------------------------
# (a) Reference (materializes the (B, H, Tq, Tk) scores; NumPy or CuPy).
# ---------------------------------------------------------------------------------------------

def _visible_ref(xp, B, Tq, Tk, causal, key_padding_mask):
    """Boolean (B, 1, Tq, Tk): True where query i may attend to key j."""
    vis = xp.ones((B, 1, Tq, Tk), dtype=bool)
    if causal:
        i = xp.arange(Tq)[:, None]
        j = xp.arange(Tk)[None, :]
        vis = vis & (j <= i + (Tk - Tq))[None, None]
    if key_padding_mask is not None:
        vis = vis & ~key_padding_mask[:, None, None, :]
    return vis


def _scores_ref(q, k, causal, key_padding_mask, attn_mask, scale):
    xp = get_array_module(q)
    s = (q @ k.swapaxes(-1, -2)) * scale                          # (B, H, Tq, Tk)
    if attn_mask is not None:
        s = s + attn_mask
    vis = _visible_ref(xp, q.shape[0], q.shape[2], k.shape[2], causal, key_padding_mask)
    return xp.where(vis, s, -np.inf)                              # (B, H, Tq, Tk)


def attention_forward_ref(q, k, v, causal=False, key_padding_mask=None, attn_mask=None,
                          scale=None):
    xp = get_array_module(q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = _scores_ref(q, k, causal, key_padding_mask, attn_mask, scale)
    m = s.max(axis=-1, keepdims=True)                             # (B, H, Tq, 1)
    m = xp.where(m == -np.inf, 0, m)                              # fully masked row: shift 0
    e = xp.exp(s - m)                                             # (B, H, Tq, Tk)
    lsum = e.sum(axis=-1, keepdims=True)                             # (B, H, Tq, 1)
    safe = xp.where(lsum > 0, lsum, 1)                            # fully masked rows: 0 / 1
    p = e / safe                                                  # (B, H, Tq, Tk)
    out = p @ v                                                   # (B, H, Tq, D)
    lse = xp.where(lsum > 0, m + xp.log(safe), -np.inf)[..., 0]   # (B, H, Tq)
    return out.astype(q.dtype), lse.astype(q.dtype)


def attention_backward_ref(q, k, v, out, lse, dout, causal=False, key_padding_mask=None,
                           attn_mask=None, scale=None):
    xp = get_array_module(q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = _scores_ref(q, k, causal, key_padding_mask, attn_mask, scale)
    lse4 = lse[..., None]                                         # (B, H, Tq, 1)
    # forward: p = exp(s - lse); a fully masked row (lse = -inf) has p = 0
    p = xp.where(lse4 == -np.inf, 0, xp.exp(s - xp.where(lse4 == -np.inf, 0, lse4)))
    dv = p.swapaxes(-1, -2) @ dout                                # (B, H, Tk, D)
    dp = dout @ v.swapaxes(-1, -2)                                # (B, H, Tq, Tk)
    di = (dout * out).sum(axis=-1, keepdims=True)                 # (B, H, Tq, 1)
    ds = p * (dp - di)                                            # softmax backward
    dq = (ds @ k) * scale                                         # (B, H, Tq, D)
    dk = (ds.swapaxes(-1, -2) @ q) * scale                        # (B, H, Tk, D)
    return dq.astype(q.dtype), dk.astype(q.dtype), dv.astype(q.dtype)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _check_inputs(q, k, v, key_padding_mask, attn_mask, scale):
    """Validate shapes and dtypes; return (xp, scale as float, attn_mask cast to q.dtype)."""
    xp = get_array_module(q, k, v)
    D.check_float([("q", q), ("k", k), ("v", v)])
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be 4-D (B, H, T, D); got shapes {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    nb, nh, _, d = q.shape
    if k.shape != v.shape or k.shape[:2] != (nb, nh) or k.shape[3] != d or d == 0:
        raise ValueError(f"expected q (B, H, Tq, D) and k, v (B, H, Tk, D) with D > 0; got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    tk = k.shape[2]
    if key_padding_mask is not None:
        if key_padding_mask.dtype != bool:
            raise TypeError(f"key_padding_mask must be bool (True = padded key), got dtype "
                            f"{key_padding_mask.dtype}")
        D.check_shape("key_padding_mask", key_padding_mask, (nb, tk))
    if attn_mask is not None:
        if attn_mask.dtype == bool:
            raise TypeError("attn_mask must be an additive float mask (0 = keep, -inf = hide); "
                            "for a bool mask use xp.where(allowed, 0.0, -inf) or "
                            "key_padding_mask")
        if attn_mask.ndim > 4:
            raise ValueError(f"attn_mask of shape {tuple(attn_mask.shape)} has more than 4 axes")
        full = (nb, nh, q.shape[2], tk)
        try:
            if np.broadcast_shapes(attn_mask.shape, full) != full:
                raise ValueError
        except ValueError:
            raise ValueError(f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast "
                             f"to (B, H, Tq, Tk) = {full}") from None
        attn_mask = attn_mask.astype(q.dtype, copy=False)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    return xp, scale, attn_mask


_NO_MASKS = {}   # (module, dtype, device) -> the dummy arrays passed for absent masks


def _kernel_masks(xp, q, key_padding_mask, attn_mask):
    """The (kpm, has_kpm, mask, has_mask) kernel arguments: dummies when absent; the mask as
    a contiguous 4-D array whose broadcast axes have length 1 (never expanded to B*H*T*T)."""
    key = (xp.__name__, q.dtype.char, str(getattr(q, "device", "")))
    if key not in _NO_MASKS:
        _NO_MASKS[key] = (xp.zeros((1, 1), dtype=bool), xp.zeros((1, 1, 1, 1), dtype=q.dtype))
    no_kpm, no_mask = _NO_MASKS[key]
    if key_padding_mask is None:
        kpm, has_kpm = no_kpm, False
    else:
        kpm, has_kpm = xp.ascontiguousarray(key_padding_mask), True
    if attn_mask is None:
        return kpm, has_kpm, no_mask, False
    m = attn_mask.reshape((1,) * (4 - attn_mask.ndim) + tuple(attn_mask.shape))
    # a broadcast view (stride 0) is read through one of its rows
    m = m[tuple(slice(0, 1) if (m.shape[a] > 1 and m.strides[a] == 0) else slice(None)
                for a in range(4))]
    return kpm, has_kpm, xp.ascontiguousarray(m), True


def _rows_as_given(xp, a, output=False):
    """``a`` itself when the CPU kernels can read (or, for an output, write) it in place: its
    last axis contiguous and its rows apart (they go to BLAS with a leading dimension), as a
    head of a packed (B, T, 3, H, D) projection viewed as (B, H, T, D) is, and large enough
    to pay for it. Otherwise a C-contiguous copy (an output: None, and the caller writes back
    from a contiguous one)."""
    if (xp is np and a.ndim == 4 and a.nbytes >= _MIN_STRIDED_BYTES
            and a.strides[-1] == a.itemsize
            and a.strides[-2] >= a.shape[-1] * a.itemsize
            and min(a.strides) >= (a.itemsize if output else 0)):
        return a
    return None if output else D.contiguous(xp, a)


def _written_in_place(xp, buf, which):
    """``buf`` when the kernel can write it directly, else a fresh C-contiguous array of its
    shape (the caller copies the result into ``buf``)."""
    if buf.flags.c_contiguous:
        return buf
    if which == "cpu" and _rows_as_given(xp, buf, output=True) is not None:
        return buf
    return xp.empty(buf.shape, dtype=buf.dtype)


def attention_forward(q, k, v, *, causal=False, key_padding_mask=None, attn_mask=None,
                      scale=None, out=None, impl="auto"):
    """Scaled dot-product attention softmax(Q K^T * scale + M) V.

    q: (B, H, Tq, D); k, v: (B, H, Tk, D), float32 or float64, one dtype.
    causal: bool, bottom-right aligned (query i sees keys j <= i + Tk - Tq).
    key_padding_mask: bool (B, Tk) or None, True = ignore that key.
    attn_mask: additive float mask broadcastable to (B, H, Tq, Tk) or None (-inf allowed).
    scale: float, default 1 / sqrt(D). out: optional (B, H, Tq, D) buffer, overwritten.
    On the CPU, arrays whose last axis is contiguous are read and written in place (a head
    of a packed (B, T, 3, H, D) projection needs no copy); other layouts are copied.
    Returns (out (B, H, Tq, D), lse (B, H, Tq)); save both for ``attention_backward``.
    Fully masked rows: out = 0, lse = -inf.
    """
    xp, scale, attn_mask = _check_inputs(q, k, v, key_padding_mask, attn_mask, scale)
    which = D.choose_impl(q, k, v, key_padding_mask, attn_mask, out, impl=impl)
    nb, nh, tq, d = q.shape
    out = D.prepare_out(out, "out", (nb, nh, tq, d), q.dtype, xp)
    if k.shape[2] == 0 or q.size == 0:                  # no keys at all: every row is masked
        out[...] = 0
        return out, xp.full((nb, nh, tq), -np.inf, dtype=q.dtype)
    if which == "ref":
        o, lse = attention_forward_ref(q, k, v, causal, key_padding_mask, attn_mask, scale)
        return D.write_into(out, o), lse
    if which == "cpu":          # strided heads as they are (the CPU kernels take row strides)
        qc, kc, vc = (_rows_as_given(xp, a) for a in (q, k, v))
    else:
        qc, kc, vc = (D.contiguous(xp, a) for a in (q, k, v))
    o = _written_in_place(xp, out, which)
    masks = _kernel_masks(xp, q, key_padding_mask, attn_mask)
    lse = xp.empty((nb, nh, tq), dtype=q.dtype)
    if which == "cpu":
        n_items = nb * nh * -(-tq // BLOCK_Q)
        # Threads only pay when each gets real work (a decoding step has 1 query per head).
        min_items = max(1, _MIN_WORK_PER_THREAD // max(1, min(tq, BLOCK_Q) * kc.shape[2] * d))
        args = (_attn_fwd_cpu, n_items, qc, kc, vc, o, lse, q.dtype.type(scale), bool(causal),
                *masks)
        if n_items < 2 * min_items and min(tq, BLOCK_Q) * BLOCK_K * d <= SMALL_GEMM:
            # one thread, and every tile product is small enough for _cblas's loops: no BLAS
            # call to keep single-threaded (a decoding step saves the pinning's ~5 us)
            D.parallel_items(*args, interleave=True, min_items_per_thread=min_items)
        else:
            with single_threaded_blas():
                D.parallel_items(*args, interleave=True, min_items_per_thread=min_items)
    else:
        attention_forward_cuda(qc, kc, vc, o, lse, q.dtype.type(scale), bool(causal), *masks)
    return D.write_into(out, o), lse


def attention_backward(q, k, v, out, lse, dout, *, causal=False, key_padding_mask=None,
                       attn_mask=None, scale=None, dq=None, dk=None, dv=None, impl="auto"):
    """Gradients of ``attention_forward`` with respect to q, k, v.

    q, k, v and the options: exactly as given to the forward. out (B, H, Tq, D) and
    lse (B, H, Tq): the forward's results. dout: (B, H, Tq, D) upstream gradient.
    dq (B, H, Tq, D), dk, dv (B, H, Tk, D): optional buffers, OVERWRITTEN (not accumulated).
    Returns (dq, dk, dv). The attn_mask gets no gradient (it is treated as a constant).
    """
    xp, scale, attn_mask = _check_inputs(q, k, v, key_padding_mask, attn_mask, scale)
    D.check_float([("q", q), ("out", out), ("lse", lse), ("dout", dout)])
    D.check_shape("out", out, q.shape)
    D.check_shape("dout", dout, q.shape)
    D.check_shape("lse", lse, q.shape[:3])
    which = D.choose_impl(q, k, v, out, lse, dout, key_padding_mask, attn_mask, dq, dk, dv,
                          impl=impl)
    dq = D.prepare_out(dq, "dq", q.shape, q.dtype, xp)
    dk = D.prepare_out(dk, "dk", k.shape, q.dtype, xp)
    dv = D.prepare_out(dv, "dv", v.shape, q.dtype, xp)
    if k.shape[2] == 0 or q.size == 0:
        dq[...] = 0
        dk[...] = 0
        dv[...] = 0
        return dq, dk, dv
    if which == "ref":
        grads = attention_backward_ref(q, k, v, out, lse, dout, causal, key_padding_mask,
                                       attn_mask, scale)
        return tuple(D.write_into(buf, g) for buf, g in zip((dq, dk, dv), grads))
    if which == "cpu":          # strided heads as they are (the CPU kernels take row strides)
        q_, k_, v_, out_, dout_ = (_rows_as_given(xp, a) for a in (q, k, v, out, dout))
        args = [q_, k_, v_, out_, D.contiguous(xp, lse), dout_]
    else:
        args = [D.contiguous(xp, a) for a in (q, k, v, out, lse, dout)]
    bufs = [_written_in_place(xp, buf, which) for buf in (dq, dk, dv)]
    masks = _kernel_masks(xp, q, key_padding_mask, attn_mask)
    if which == "cpu":
        # one item is a whole head: Tq x Tk x D multiply-adds, five times over; a share
        # must outweigh a hand-off several times (its scratch allocation included): small
        # heads run on one thread
        per_head = 5 * q.shape[2] * k.shape[2] * q.shape[3]
        with single_threaded_blas():
            D.parallel_items(_attn_bwd_cpu, q.shape[0] * q.shape[1], *args, *bufs,
                             q.dtype.type(scale), bool(causal), *masks, interleave=True,
                             min_items_per_thread=max(1, _MIN_WORK_PER_THREAD // per_head))
    else:
        attention_backward_cuda(*args, *bufs, q.dtype.type(scale), bool(causal), *masks)
    return tuple(D.write_into(buf, g) for buf, g in zip((dq, dk, dv), bufs))
