"""Fused log-softmax + negative log-likelihood (cross-entropy) over logits: forward, backward.

Shape legend: N rows (e.g. B*T tokens), V classes (vocabulary).
    logits (N, V) float32/float64; targets (N,) integers; lse (N,); dlogits (N, V)

Per row i with target t, lse_i = log sum_j exp(logits_ij), eps = label_smoothing:
    loss_i = (1 - eps) * (lse_i - logits_it) + eps * (lse_i - mean_j logits_ij)
  (PyTorch's definition: the target distribution is (1 - eps) * one_hot(t) + eps / V.)
Rows whose target equals ``ignore_index`` have loss 0 and gradient 0.
Reductions: 'none' -> (N,) losses; 'sum'; 'mean' = sum / number of non-ignored rows (as
PyTorch). If every row is ignored, 'mean' gives 0.0 (PyTorch gives NaN; we keep the
numerics contract of no NaN) and the gradient is 0.

Backward, with g_i the upstream gradient of row i (dloss / n_valid for 'mean', dloss for
'sum', dloss[i] for 'none'):
    dlogits_ij = g_i * (softmax_ij - (1 - eps) * [j == t_i] - eps / V)
computed row by row from the saved lse, without building an N x V one-hot matrix.

Targets outside [0, V) other than ignore_index (negative ones included: no wrap-around)
raise IndexError naming the target and V.

Order: (a) reference, (b) numba CPU kernels, (c) CUDA kernels, then
``cross_entropy_forward`` / ``cross_entropy_backward``.
"""
import functools
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._cuda_utils import TPB_MAX, block_max, block_sum, cuda, cuda_jit
from ._fastmath import FASTMATH, as_type_of, exp_le0, fmax, shift_of_max

REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------------------
# (a) Reference
# ---------------------------------------------------------------------------------------------

def _lse_ref(logits):
    xp = get_array_module(logits)
    m = logits.max(axis=-1, keepdims=True)                        # (N, 1)
    return (m + xp.log(xp.exp(logits - m).sum(axis=-1, keepdims=True)))[:, 0]   # (N,)


def cross_entropy_rows_ref(logits, targets, ignore_index=-100, label_smoothing=0.0):
    """Per-row losses (N,) (0 on ignored rows) and lse (N,)."""
    xp = get_array_module(logits)
    lse = _lse_ref(logits)                                        # (N,)
    valid = targets != ignore_index                               # (N,)
    safe_t = xp.where(valid, targets, 0)
    picked = xp.take_along_axis(logits, safe_t[:, None], axis=1)[:, 0]    # logits_it
    nll = lse - picked
    smooth = lse - logits.mean(axis=-1)                           # -mean_j log p_ij
    loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    return xp.where(valid, loss, 0).astype(logits.dtype), lse.astype(logits.dtype)


def cross_entropy_backward_ref(logits, targets, lse, row_grad, ignore_index=-100,
                               label_smoothing=0.0):
    """dlogits (N, V) from per-row upstream gradients row_grad (N,)."""
    xp = get_array_module(logits)
    n, v = logits.shape
    valid = targets != ignore_index
    p = xp.exp(logits - lse[:, None])                             # softmax (N, V)
    d = p - label_smoothing / v
    rows = xp.arange(n)
    d[rows, xp.where(valid, targets, 0)] -= (1 - label_smoothing)
    g = xp.where(valid, row_grad, 0)
    return (d * g[:, None]).astype(logits.dtype)


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernels (serial nogil loops over row shares; see _dispatch.parallel_items)
# ---------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _ce_fwd_cpu(first, stop, step, x, t, ignore_index, smoothing, loss, lse):
    """x (N, V), t (N,) int64 (checked in range); loss, lse (N,) overwritten."""
    v = x.shape[1]
    for i in range(first, stop, step):
        xi = x[i]
        m = xi[0]
        for j in range(v):                      # from 0: LLVM vectorizes range(n) loops only
            m = fmax(m, xi[j])
        m = shift_of_max(m)
        s = as_type_of(m, 0.0)
        for j in range(v):
            s += exp_le0(xi[j] - m)
        row_lse = m + math.log(s)
        lse[i] = row_lse
        if t[i] == ignore_index:
            loss[i] = 0
            continue
        nll = row_lse - xi[t[i]]
        if smoothing != 0:
            tot = 0.0
            for j in range(v):
                tot += xi[j]
            loss[i] = (1 - smoothing) * nll + smoothing * (row_lse - tot / v)
        else:
            loss[i] = nll


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _ce_bwd_cpu(first, stop, step, x, t, lse, row_grad, ignore_index, smoothing, dx):
    """dx (N, V) overwritten: g_i * (softmax - (1 - eps) one_hot - eps / V)."""
    v = x.shape[1]
    for i in range(first, stop, step):
        dxi = dx[i]
        if t[i] == ignore_index:
            for j in range(v):
                dxi[j] = 0
            continue
        xi = x[i]
        g = row_grad[i]
        row_lse = lse[i]
        off = as_type_of(row_lse, smoothing / v)
        for j in range(v):
            dxi[j] = g * (exp_le0(xi[j] - row_lse) - off)
        dxi[t[i]] -= g * as_type_of(row_lse, 1 - smoothing)


# ---------------------------------------------------------------------------------------------
# (c) Numba CUDA kernels: one block per row, shared-memory reductions.
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_char):
    acc = np.float32 if dtype_char == "f" else np.float64
    zero = acc(0.0)
    ninf = acc(-np.inf)

    @cuda_jit
    def fwd(x, t, ignore_index, smoothing, loss, lse):
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        scratch = cuda.shared.array(TPB_MAX, dtype=acc)
        v = x.shape[1]
        m = ninf
        tot = zero
        for j in range(tid, v, nt):
            m = max(m, x[row, j])
            tot += x[row, j]
        m = block_max(scratch, m)
        tot = block_sum(scratch, tot)
        if m == ninf:
            m = zero
        s = zero
        for j in range(tid, v, nt):
            s += math.exp(x[row, j] - m)
        s = block_sum(scratch, s)
        if tid == 0:
            row_lse = m + math.log(s)
            lse[row] = row_lse
            if t[row] == ignore_index:
                loss[row] = 0
            else:
                nll = row_lse - x[row, t[row]]
                loss[row] = (1 - smoothing) * nll + smoothing * (row_lse - tot / v)

    @cuda_jit
    def bwd(x, t, lse, row_grad, ignore_index, smoothing, dx):
        row = cuda.blockIdx.x
        v = x.shape[1]
        ignored = t[row] == ignore_index
        g = row_grad[row]
        off = smoothing / v
        for j in range(cuda.threadIdx.x, v, cuda.blockDim.x):
            if ignored:
                dx[row, j] = 0
            else:
                hit = (1 - smoothing) if j == t[row] else 0.0
                dx[row, j] = g * (math.exp(x[row, j] - lse[row]) - off - hit)

    return fwd, bwd


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _check(logits, targets, ignore_index, label_smoothing, reduction):
    xp = get_array_module(logits, targets)
    D.check_float([("logits", logits)])
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, V), got shape {tuple(logits.shape)}")
    n, v = logits.shape
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be integers (class indices), got dtype {targets.dtype}")
    if tuple(targets.shape) != (n,):
        raise ValueError(f"targets has shape {tuple(targets.shape)}, expected ({n},) for "
                         f"logits of shape {tuple(logits.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= v))
    if bool(bad.any()):
        first = int(targets[int(xp.argmax(bad))])
        raise IndexError(f"Target {first} is out of bounds for {v} classes "
                         f"(valid: 0..{v - 1}, or ignore_index={ignore_index})")
    if n > 0 and v == 0:
        raise ValueError("logits has V = 0 classes")
    return xp, n, v


def _min_rows(v):
    """Rows of V logits per thread below which a second thread costs more than it saves."""
    return max(1, D.MIN_VALUES_PER_THREAD // max(v, 1))


def _row_grad(xp, dloss, targets, ignore_index, reduction, dtype):
    """Per-row upstream gradient g_i (N,) from dloss (scalar, or (N,) for 'none')."""
    n = targets.shape[0]
    if reduction == "none":
        D.check_shape("dloss", dloss, (n,))
        return xp.ascontiguousarray(dloss, dtype=dtype)
    g = xp.asarray(dloss, dtype=np.float64)
    if reduction == "mean":
        # no int()/float() of a device value (a host sync on a GPU); with every row ignored
        # the value of g does not matter: ignored rows get a zero gradient
        g = g / xp.maximum((targets != ignore_index).sum(), 1)
    rows = xp.empty(n, dtype=dtype)
    rows[...] = g
    return rows


def cross_entropy_forward(logits, targets, *, ignore_index=-100, label_smoothing=0.0,
                          reduction="mean", impl="auto"):
    """Cross-entropy of logits (N, V) against integer targets (N,).

    Returns (loss, lse): loss is a 0-d array for 'mean' / 'sum', (N,) for 'none';
    lse (N,) is the per-row log-sum-exp to pass to ``cross_entropy_backward``.
    """
    xp, n, v = _check(logits, targets, ignore_index, label_smoothing, reduction)
    which = D.choose_impl(logits, targets, impl=impl)
    if which == "ref":
        rows, lse = cross_entropy_rows_ref(logits, targets, ignore_index, label_smoothing)
    else:
        x = D.contiguous(xp, logits)
        t = xp.ascontiguousarray(targets, dtype=np.int64)
        rows = xp.empty(n, dtype=logits.dtype)
        lse = xp.empty(n, dtype=logits.dtype)
        if which == "cpu":
            D.parallel_items(_ce_fwd_cpu, n, x, t, int(ignore_index), float(label_smoothing),
                             rows, lse, min_items_per_thread=_min_rows(v))
        elif n > 0:
            _cuda_kernels(logits.dtype.char)[0][n, D.cuda_threads_per_block()](
                x, t, int(ignore_index), float(label_smoothing), rows, lse)
    if reduction == "none":
        return rows, lse
    total = rows.sum(dtype=np.float64)
    if reduction == "mean":     # every row ignored: total is 0, and so is the mean
        total = total / xp.maximum((targets != ignore_index).sum(), 1)
    return xp.asarray(total, dtype=logits.dtype), lse


def cross_entropy_backward(logits, targets, lse, dloss=1.0, *, ignore_index=-100,
                           label_smoothing=0.0, reduction="mean", out=None, impl="auto"):
    """dlogits (N, V) = g_i * (softmax(logits_i) - (1 - eps) * one_hot(t_i) - eps / V).

    lse: (N,) from the forward. dloss: the upstream gradient of the loss (a scalar for
    'mean' / 'sum', (N,) for 'none'). out: optional (N, V) buffer, OVERWRITTEN.
    Ignored rows get zeros.
    """
    xp, n, v = _check(logits, targets, ignore_index, label_smoothing, reduction)
    D.check_float([("logits", logits), ("lse", lse)])
    D.check_shape("lse", lse, (n,))
    which = D.choose_impl(logits, targets, lse, out, impl=impl)
    out = D.prepare_out(out, "out", logits.shape, logits.dtype, xp)
    g = _row_grad(xp, dloss, targets, ignore_index, reduction, logits.dtype)
    if which == "ref":
        d = cross_entropy_backward_ref(logits, targets, lse, g, ignore_index, label_smoothing)
        return D.write_into(out, d)
    x = D.contiguous(xp, logits)
    t = xp.ascontiguousarray(targets, dtype=np.int64)
    lse_c = D.contiguous(xp, lse)
    dx = out if out.flags.c_contiguous else xp.empty_like(x)
    if which == "cpu":
        D.parallel_items(_ce_bwd_cpu, n, x, t, lse_c, g, int(ignore_index),
                         float(label_smoothing), dx,
                         min_items_per_thread=_min_rows(v))
    elif n > 0:
        _cuda_kernels(logits.dtype.char)[1][n, D.cuda_threads_per_block()](
            x, t, lse_c, g, int(ignore_index), float(label_smoothing), dx)
    return D.write_into(out, dx)
