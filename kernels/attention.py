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

Order: (a) reference, (b) numba CPU kernels, (c) CUDA kernels (in attention_cuda.py, to keep
files short), then ``attention_forward`` / ``attention_backward``.
"""
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._blas import single_threaded_blas
from ._fastmath import as_type_of, exp_le0, fmax, zero_of
from .attention_cuda import attention_backward_cuda, attention_forward_cuda

FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
BLOCK_Q = 128       # query rows per tile (CPU)
BLOCK_K = 128       # key rows per tile (CPU)
_MIN_WORK_PER_THREAD = 1 << 18  # multiply-adds below which a thread hand-off costs more


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
# (b) Numba CPU kernels. Tiles of BLOCK_Q queries x BLOCK_K keys; the three GEMMs per tile go
#     to BLAS through np.dot; masking, exp and the online softmax run in vectorized loops.
# ---------------------------------------------------------------------------------------------

@njit(cache=True, fastmath=FASTMATH)
def _prepare_row(srow, scale, b, h, i, j0, tq, tk, causal, kpm, has_kpm, mask, has_mask):
    """Prepare one row of raw scores Q_i K_j^T (srow[c] is key j0 + c) for the softmax.

    Returns (lim, sc): keys c >= lim are hidden by the causal mask, and the score of key
    c < lim is srow[c] * sc. Without attn_mask / key_padding_mask the row is left as it is
    and sc = scale, so that the scaling is fused into the exp loop; otherwise the scale and
    the masks (-inf) are applied in place here and sc = 1.
    """
    nc = srow.shape[0]
    lim = nc
    if causal:                                  # keys j > i + (Tk - Tq) are hidden
        lim = min(max(i + (tk - tq) + 1 - j0, 0), nc)
    if not (has_mask or has_kpm):
        return lim, scale
    for c in range(lim):
        srow[c] *= scale
    if has_mask:
        mrow = mask[b if mask.shape[0] > 1 else 0, h if mask.shape[1] > 1 else 0,
                    i if mask.shape[2] > 1 else 0]
        if mrow.shape[0] == 1:
            for c in range(lim):
                srow[c] += mrow[0]
        else:
            for c in range(lim):
                srow[c] += mrow[j0 + c]
    if has_kpm:
        for c in range(lim):
            if kpm[b, j0 + c]:
                srow[c] = -np.inf
    return lim, as_type_of(scale, 1.0)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _add_into(dst, src):
    """dst += src for 2-D arrays (a shared helper: one compiled loop, not one per call site)."""
    for r in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] += src[r, c]


@njit(cache=True, nogil=True)
def _zero_fill(dst):
    for r in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] = 0


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _attn_fwd_cpu(first, stop, step, q, k, v, out, lse, scale, causal, kpm, has_kpm, mask,
                  has_mask):
    """Work items (b, h, query block) first, first + step, ... < stop.
    q (B,H,Tq,D), k/v (B,H,Tk,D) C-contiguous; out (B,H,Tq,D) and lse (B,H,Tq) overwritten."""
    nb, nh, tq, d = q.shape
    tk = k.shape[2]
    nqb = (tq + BLOCK_Q - 1) // BLOCK_Q
    for item in range(first, stop, step):
        b = item // (nh * nqb)
        h = (item // nqb) % nh
        i0 = (item % nqb) * BLOCK_Q
        i1 = min(i0 + BLOCK_Q, tq)
        bq = i1 - i0
        qi = q[b, h, i0:i1]                                       # (bq, D)
        acc = np.zeros((bq, d), dtype=q.dtype)                    # running sum of P V
        pv = np.empty((bq, d), dtype=q.dtype)
        m = np.full(bq, -np.inf, dtype=q.dtype)                   # running row max (scaled)
        lsum = np.zeros(bq, dtype=q.dtype)                           # running row sum of exp
        sbuf = np.empty(bq * BLOCK_K, dtype=q.dtype)
        # causal: the last key any row of this tile sees is (i1 - 1) + (Tk - Tq)
        j_end = min(tk, i1 + (tk - tq)) if causal else tk
        for j0 in range(0, max(j_end, 0), BLOCK_K):
            j1 = min(j0 + BLOCK_K, j_end)
            bk = j1 - j0
            s = sbuf[:bq * bk].reshape(bq, bk)
            np.dot(qi, k[b, h, j0:j1].T, s)                       # (bq, bk) = Q K^T
            for r in range(bq):
                srow = s[r]
                lim, sc = _prepare_row(srow, scale, b, h, i0 + r, j0, tq, tk, causal,
                                       kpm, has_kpm, mask, has_mask)
                mx = as_type_of(sc, -np.inf)
                for c in range(lim):
                    mx = fmax(mx, srow[c])
                mx *= sc                                          # sc > 0: max commutes
                m_new = fmax(m[r], mx)
                if m_new == -np.inf:                # nothing visible yet in this row
                    for c in range(bk):
                        srow[c] = 0
                    continue
                alpha = exp_le0(m[r] - m_new)       # rescale the old sums; exp(-inf) = 0
                ssum = zero_of(mx)
                for c in range(lim):
                    p = exp_le0(srow[c] * sc - m_new)
                    srow[c] = p
                    ssum += p
                for c in range(lim, bk):
                    srow[c] = 0
                lsum[r] = lsum[r] * alpha + ssum
                m[r] = m_new
                if alpha != 1:
                    for dd in range(d):
                        acc[r, dd] *= alpha
            np.dot(s, v[b, h, j0:j1], pv)                         # (bq, D) = P V
            _add_into(acc, pv)
        for r in range(bq):
            if lsum[r] > 0:
                inv = as_type_of(scale, 1.0) / lsum[r]
                for dd in range(d):
                    out[b, h, i0 + r, dd] = acc[r, dd] * inv
                lse[b, h, i0 + r] = m[r] + math.log(lsum[r])
            else:                                   # fully masked row: zeros, lse = -inf
                for dd in range(d):
                    out[b, h, i0 + r, dd] = 0
                lse[b, h, i0 + r] = -np.inf


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _attn_bwd_cpu(first, stop, step, q, k, v, out, lse, dout, dq, dk, dv, scale, causal, kpm,
                  has_kpm, mask, has_mask):
    """Work items: (b, h) heads first, first + step, ... < stop; one head per item, so dq
    accumulates without races. dq, dk, dv (B,H,T,D) are overwritten."""
    nb, nh, tq, d = q.shape
    tk = k.shape[2]
    for bh in range(first, stop, step):
        b = bh // nh
        h = bh % nh
        di = np.empty(tq, dtype=q.dtype)                          # Di = rowsum(dO * O)
        for i in range(tq):
            acc = zero_of(scale)
            for dd in range(d):
                acc += dout[b, h, i, dd] * out[b, h, i, dd]
            di[i] = acc
        _zero_fill(dq[b, h])
        sbuf = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        dpbuf = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        tmp_k = np.empty((BLOCK_K, d), dtype=q.dtype)
        tmp_q = np.empty((BLOCK_Q, d), dtype=q.dtype)
        for j0 in range(0, tk, BLOCK_K):
            j1 = min(j0 + BLOCK_K, tk)
            bk = j1 - j0
            kj = k[b, h, j0:j1]                                   # (bk, D)
            vj = v[b, h, j0:j1]                                   # (bk, D)
            dkj = dk[b, h, j0:j1]
            dvj = dv[b, h, j0:j1]
            _zero_fill(dkj)
            _zero_fill(dvj)
            # causal: query i sees key j0 only when i >= j0 - (Tk - Tq)
            i_start = max(j0 - (tk - tq), 0) if causal else 0
            i_start = (i_start // BLOCK_Q) * BLOCK_Q
            for i0 in range(i_start, tq, BLOCK_Q):
                i1 = min(i0 + BLOCK_Q, tq)
                bq = i1 - i0
                qi = q[b, h, i0:i1]
                doi = dout[b, h, i0:i1]
                s = sbuf[:bq * bk].reshape(bq, bk)
                dp = dpbuf[:bq * bk].reshape(bq, bk)
                np.dot(qi, kj.T, s)                               # S = Q K^T    (bq, bk)
                np.dot(doi, vj.T, dp)                             # dP = dO V^T  (bq, bk)
                for r in range(bq):
                    srow = s[r]
                    dprow = dp[r]
                    row_lse = lse[b, h, i0 + r]
                    lim, sc = _prepare_row(srow, scale, b, h, i0 + r, j0, tq, tk, causal,
                                           kpm, has_kpm, mask, has_mask)
                    if row_lse == -np.inf:                        # fully masked: P = 0
                        lim = 0
                    dir_ = di[i0 + r]
                    for c in range(lim):
                        p = exp_le0(srow[c] * sc - row_lse)       # P = exp(S - lse)
                        srow[c] = p
                        dprow[c] = p * (dprow[c] - dir_) * scale  # dS, times the scale
                    for c in range(lim, bk):
                        srow[c] = 0
                        dprow[c] = 0
                tk_ = tmp_k[:bk]
                np.dot(s.T, doi, tk_)                             # dV_j += P^T dO_i
                _add_into(dvj, tk_)
                np.dot(dp.T, qi, tk_)                             # dK_j += dS^T Q_i
                _add_into(dkj, tk_)
                tq_ = tmp_q[:bq]
                np.dot(dp, kj, tq_)                               # dQ_i += dS K_j
                _add_into(dq[b, h, i0:i1], tq_)


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


def _kernel_masks(xp, q, key_padding_mask, attn_mask):
    """The (kpm, has_kpm, mask, has_mask) kernel arguments: dummies when absent; the mask as
    a contiguous 4-D array whose broadcast axes have length 1 (never expanded to B*H*T*T)."""
    if key_padding_mask is None:
        kpm, has_kpm = xp.zeros((1, 1), dtype=bool), False
    else:
        kpm, has_kpm = xp.ascontiguousarray(key_padding_mask), True
    if attn_mask is None:
        return kpm, has_kpm, xp.zeros((1, 1, 1, 1), dtype=q.dtype), False
    m = attn_mask.reshape((1,) * (4 - attn_mask.ndim) + tuple(attn_mask.shape))
    # a broadcast view (stride 0) is read through one of its rows
    m = m[tuple(slice(0, 1) if (m.shape[a] > 1 and m.strides[a] == 0) else slice(None)
                for a in range(4))]
    return kpm, has_kpm, xp.ascontiguousarray(m), True


def attention_forward(q, k, v, *, causal=False, key_padding_mask=None, attn_mask=None,
                      scale=None, out=None, impl="auto"):
    """Scaled dot-product attention softmax(Q K^T * scale + M) V.

    q: (B, H, Tq, D); k, v: (B, H, Tk, D), float32 or float64, one dtype.
    causal: bool, bottom-right aligned (query i sees keys j <= i + Tk - Tq).
    key_padding_mask: bool (B, Tk) or None, True = ignore that key.
    attn_mask: additive float mask broadcastable to (B, H, Tq, Tk) or None (-inf allowed).
    scale: float, default 1 / sqrt(D). out: optional (B, H, Tq, D) buffer, overwritten.
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
    qc, kc, vc = (D.contiguous(xp, a) for a in (q, k, v))
    masks = _kernel_masks(xp, q, key_padding_mask, attn_mask)
    o = out if out.flags.c_contiguous else xp.empty_like(qc)
    lse = xp.empty((nb, nh, tq), dtype=q.dtype)
    if which == "cpu":
        n_items = nb * nh * -(-tq // BLOCK_Q)
        # Threads only pay when each gets real work (a decoding step has 1 query per head).
        min_items = max(1, _MIN_WORK_PER_THREAD // max(1, min(tq, BLOCK_Q) * kc.shape[2] * d))
        with single_threaded_blas():
            D.parallel_items(_attn_fwd_cpu, n_items, qc, kc, vc, o, lse, q.dtype.type(scale),
                             bool(causal), *masks, interleave=True,
                             min_items_per_thread=min_items)
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
    args = [D.contiguous(xp, a) for a in (q, k, v, out, lse, dout)]
    bufs = [buf if buf.flags.c_contiguous else xp.empty(buf.shape, dtype=buf.dtype)
            for buf in (dq, dk, dv)]
    masks = _kernel_masks(xp, q, key_padding_mask, attn_mask)
    if which == "cpu":
        with single_threaded_blas():
            D.parallel_items(_attn_bwd_cpu, q.shape[0] * q.shape[1], *args, *bufs,
                             q.dtype.type(scale), bool(causal), *masks, interleave=True)
    else:
        attention_backward_cuda(*args, *bufs, q.dtype.type(scale), bool(causal), *masks)
    return tuple(D.write_into(buf, g) for buf, g in zip((dq, dk, dv), bufs))
