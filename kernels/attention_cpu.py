"""The numba CPU kernels behind kernels/attention.py (formulas and masks: its docstring).

Tiles of BLOCK_Q queries x BLOCK_K keys with an online softmax; each work item is one
(batch, head, query tile) in the forward and one (batch, head) in the backward, run by
``_dispatch.parallel_items`` (``first, stop, step`` bounds).
"""
import math

import numpy as np
from numba import njit

from ._cblas import gemm
from ._fastmath import FASTMATH, as_type_of, exp_le0, fmax, zero_of

BLOCK_Q = 128       # query rows per tile (CPU)
BLOCK_K = 128       # key rows per tile (CPU)


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernels. Tiles of BLOCK_Q queries x BLOCK_K keys; the three GEMMs per tile go
#     to NumPy's BLAS through _cblas.gemm (accumulating in place with beta = 1); masking,
#     exp and the online softmax run in vectorized loops.
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


@njit(cache=True, nogil=True)
def _zero_fill(dst):
    for r in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] = 0


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _attn_fwd_cpu(first, stop, step, q, k, v, out, lse, scale, causal, kpm, has_kpm, mask,
                  has_mask):
    """Work items (b, h, query block) first, first + step, ... < stop.
    q (B,H,Tq,D), k/v (B,H,Tk,D), out (B,H,Tq,D): the last axis contiguous, rows possibly
    strided (heads of a packed projection); out and lse (B,H,Tq) are overwritten."""
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
        m = np.full(bq, -np.inf, dtype=q.dtype)                   # running row max (scaled)
        lsum = np.zeros(bq, dtype=q.dtype)                           # running row sum of exp
        sbuf = np.empty(bq * BLOCK_K, dtype=q.dtype)
        # causal: the last key any row of this tile sees is (i1 - 1) + (Tk - Tq)
        j_end = min(tk, i1 + (tk - tq)) if causal else tk
        for j0 in range(0, max(j_end, 0), BLOCK_K):
            j1 = min(j0 + BLOCK_K, j_end)
            bk = j1 - j0
            s = sbuf[:bq * bk].reshape(bq, bk)
            gemm(qi, k[b, h, j0:j1].T, s)                         # (bq, bk) = Q K^T
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
            gemm(s, v[b, h, j0:j1], acc, 1.0)                     # acc += P V  (bq, D)
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
    accumulates without races. dq, dk, dv (B,H,T,D) are overwritten. Every (B,H,T,D) array
    has its last axis contiguous; rows may be strided."""
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
        # each output tile's first product overwrites it (beta = 0), later ones add to it
        # (beta = 1): no zero-filling pass over dq, dk, dv, whose rows may be strided
        nqb = (tq + BLOCK_Q - 1) // BLOCK_Q
        dq_written = np.zeros(nqb, dtype=np.bool_)
        sbuf = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        dpbuf = np.empty(BLOCK_Q * BLOCK_K, dtype=q.dtype)
        for j0 in range(0, tk, BLOCK_K):
            j1 = min(j0 + BLOCK_K, tk)
            bk = j1 - j0
            kj = k[b, h, j0:j1]                                   # (bk, D)
            vj = v[b, h, j0:j1]                                   # (bk, D)
            dkj = dk[b, h, j0:j1]
            dvj = dv[b, h, j0:j1]
            beta_kv = 0.0
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
                gemm(qi, kj.T, s)                                 # S = Q K^T    (bq, bk)
                gemm(doi, vj.T, dp)                               # dP = dO V^T  (bq, bk)
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
                gemm(s.T, doi, dvj, beta_kv)                      # dV_j += P^T dO_i
                gemm(dp.T, qi, dkj, beta_kv)                      # dK_j += dS^T Q_i
                beta_kv = 1.0
                iq = i0 // BLOCK_Q
                gemm(dp, kj, dq[b, h, i0:i1], 1.0 if dq_written[iq] else 0.0)  # dQ_i += dS K_j
                dq_written[iq] = True
            if beta_kv == 0.0:                                    # no query sees these keys
                _zero_fill(dkj)
                _zero_fill(dvj)
        for iq in range(nqb):                                     # rows that see no key
            if not dq_written[iq]:
                _zero_fill(dq[b, h, iq * BLOCK_Q:min((iq + 1) * BLOCK_Q, tq)])
