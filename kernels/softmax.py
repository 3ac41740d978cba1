"""Softmax and log-softmax along the last axis: forward and backward.

Shape legend: x, y, dy, dx are (..., C); the kernels see them as (N, C) with N the product of
the leading axes (C classes / channels on the last axis).

    y = softmax(x)          y_j = exp(x_j - m) / sum_k exp(x_k - m),  m = max_k x_k
    dx = y * (dy - sum(dy * y))                            (the softmax Jacobian-vector product)
    y = log_softmax(x)      y_j = x_j - m - log(sum_k exp(x_k - m))
    dx = dy - exp(y) * sum(dy)

Numerics: the max is subtracted first, so logits of any finite size are safe. A row that is all
-inf (fully masked) gives softmax zeros and log_softmax -inf, never NaN (torch.softmax gives
NaN there; SDPA's safe softmax gives zeros, which we follow). float32 rows are accumulated in
float32 (vectorized partial sums), float64 rows in float64.

Order of the file: (a) reference, (b) numba CPU kernels, (c) numba CUDA kernels, then the public
functions ``softmax_forward`` / ``softmax_backward`` / ``log_softmax_forward`` /
``log_softmax_backward``.
"""
import functools
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._cuda_utils import TPB_MAX, block_max, block_sum, cuda, cuda_jit
from ._fastmath import FASTMATH, as_type_of, exp_le0, fmax, shift_of_max, zero_of

# Fast-math flags without nnan/ninf: -inf is a real value here (masks), NaN must propagate.


# ---------------------------------------------------------------------------------------------
# (a) Reference: readable NumPy/CuPy, the specification the kernels are tested against.
# ---------------------------------------------------------------------------------------------

def _shifted_exp_ref(x):
    xp = get_array_module(x)
    m = x.max(axis=-1, keepdims=True)                       # (..., 1)
    m = xp.where(m == -np.inf, 0, m).astype(x.dtype)        # all -inf row: shift 0, exp -> 0
    e = xp.exp(x - m)                                       # (..., C)
    return m, e, e.sum(axis=-1, keepdims=True)              # (..., 1), (..., C), (..., 1)


def softmax_ref(x):
    """softmax over the last axis; an all -inf row gives zeros."""
    xp = get_array_module(x)
    _, e, s = _shifted_exp_ref(x)
    return e / xp.where(s > 0, s, 1)


def log_softmax_ref(x):
    """log_softmax over the last axis; an all -inf row gives -inf."""
    xp = get_array_module(x)
    m, _, s = _shifted_exp_ref(x)
    return x - (m + xp.log(xp.where(s > 0, s, 1)))


def softmax_backward_ref(y, dy):
    """dx = y * (dy - sum(dy * y)) from the softmax output y."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax_backward_ref(y, dy):
    """dx = dy - exp(y) * sum(dy) from the log_softmax output y."""
    xp = get_array_module(y)
    return dy - xp.exp(y) * dy.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernels: serial nogil loops over a share of the rows, run on a few threads by
#     _dispatch.parallel_items; each row (a few KiB) stays in L1 for its three passes.
# ---------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _softmax_fwd_cpu(first, stop, step, x, y, log):
    """Rows first, first + step, ... < stop of x, y: (N, C) C-contiguous; y is overwritten.
    ``log`` selects log_softmax."""
    c = x.shape[1]
    for i in range(first, stop, step):
        xi = x[i]
        yi = y[i]
        m = xi[0]
        for j in range(c):                      # from 0: LLVM vectorizes range(n) loops only
            m = fmax(m, xi[j])                  # llvm.maxnum: a vectorized max reduction
        m = shift_of_max(m)
        s = zero_of(m)
        if log:
            for j in range(c):
                s += exp_le0(xi[j] - m)
            lse = m + math.log(s) if s > 0 else m   # all -inf row: y = x - 0 = -inf
            for j in range(c):
                yi[j] = xi[j] - lse
        else:
            for j in range(c):
                e = exp_le0(xi[j] - m)
                yi[j] = e
                s += e
            inv = as_type_of(s, 1.0) / s if s > 0 else zero_of(m)     # all -inf row: zeros, not 0/0
            for j in range(c):
                yi[j] *= inv


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _softmax_bwd_cpu(first, stop, step, y, dy, dx, log):
    """Rows first, first + step, ... < stop of y, dy, dx: (N, C) C-contiguous; dx is
    overwritten."""
    c = y.shape[1]
    for i in range(first, stop, step):
        yi = y[i]
        dyi = dy[i]
        dxi = dx[i]
        s = zero_of(yi[0])
        if log:
            for j in range(c):
                s += dyi[j]
            for j in range(c):
                dxi[j] = dyi[j] - exp_le0(yi[j]) * s     # log-probabilities are <= 0
        else:
            for j in range(c):
                s += dyi[j] * yi[j]
            for j in range(c):
                dxi[j] = yi[j] * (dyi[j] - s)


# ---------------------------------------------------------------------------------------------
# (c) Numba CUDA kernels: one block per row, threads stride over the columns, shared-memory
#     reductions. Built per dtype so that float32 rows accumulate in float32 on the GPU.
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_char):
    acc = np.float32 if dtype_char == "f" else np.float64
    zero = acc(0.0)
    ninf = acc(-np.inf)

    @cuda_jit
    def fwd(x, y, log):
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        scratch = cuda.shared.array(TPB_MAX, dtype=acc)
        c = x.shape[1]
        m = ninf
        for j in range(tid, c, nt):
            if x[row, j] > m:
                m = x[row, j]
        m = block_max(scratch, m)
        if m == -math.inf:
            m = zero
        s = zero
        for j in range(tid, c, nt):
            s += math.exp(x[row, j] - m)
        s = block_sum(scratch, s)
        if log:
            lse = m + math.log(s) if s > 0 else m
            for j in range(tid, c, nt):
                y[row, j] = x[row, j] - lse
        else:
            inv = 1 / s if s > 0 else zero
            for j in range(tid, c, nt):
                y[row, j] = math.exp(x[row, j] - m) * inv

    @cuda_jit
    def bwd(y, dy, dx, log):
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        scratch = cuda.shared.array(TPB_MAX, dtype=acc)
        c = y.shape[1]
        s = zero
        for j in range(tid, c, nt):
            s += dy[row, j] if log else dy[row, j] * y[row, j]
        s = block_sum(scratch, s)
        for j in range(tid, c, nt):
            if log:
                dx[row, j] = dy[row, j] - math.exp(y[row, j]) * s
            else:
                dx[row, j] = y[row, j] * (dy[row, j] - s)

    return fwd, bwd


def _launch_rows(kernel, n_rows, *args):
    if n_rows > 0:
        kernel[n_rows, D.cuda_threads_per_block()](*args)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _min_rows(c):
    """Rows per thread below which a second thread costs more than it saves."""
    return max(1, D.MIN_VALUES_PER_THREAD // max(c, 1))


def _forward(x, out, impl, log):
    xp = get_array_module(x)
    D.check_float([("x", x)])
    which = D.choose_impl(x, out, impl=impl)
    out = D.prepare_out(out, "out", x.shape, x.dtype, xp)
    if x.size == 0:
        return out
    if which == "ref":
        return D.write_into(out, log_softmax_ref(x) if log else softmax_ref(x))
    x2 = D.contiguous(xp, x).reshape(-1, x.shape[-1])               # (N, C)
    y2 = out.reshape(x2.shape) if out.flags.c_contiguous else xp.empty_like(x2)
    if which == "cpu":
        D.parallel_items(_softmax_fwd_cpu, x2.shape[0], x2, y2, log,
                         min_items_per_thread=_min_rows(x2.shape[1]))
    else:
        _launch_rows(_cuda_kernels(x.dtype.char)[0], x2.shape[0], x2, y2, log)
    return D.write_into(out, y2.reshape(x.shape))


def _backward(y, dy, out, impl, log):
    xp = get_array_module(y, dy)
    D.check_float([("y", y), ("dy", dy)])
    D.check_shape("dy", dy, y.shape)
    which = D.choose_impl(y, dy, out, impl=impl)
    out = D.prepare_out(out, "out", y.shape, y.dtype, xp)
    if y.size == 0:
        return out
    if which == "ref":
        ref = log_softmax_backward_ref(y, dy) if log else softmax_backward_ref(y, dy)
        return D.write_into(out, ref)
    y2 = D.contiguous(xp, y).reshape(-1, y.shape[-1])               # (N, C)
    dy2 = D.contiguous(xp, dy).reshape(y2.shape)                    # (N, C)
    dx2 = out.reshape(y2.shape) if out.flags.c_contiguous else xp.empty_like(y2)
    if which == "cpu":
        D.parallel_items(_softmax_bwd_cpu, y2.shape[0], y2, dy2, dx2, log,
                         min_items_per_thread=_min_rows(y2.shape[1]))
    else:
        _launch_rows(_cuda_kernels(y.dtype.char)[1], y2.shape[0], y2, dy2, dx2, log)
    return D.write_into(out, dx2.reshape(y.shape))


def softmax_forward(x, *, out=None, impl="auto"):
    """Softmax over the last axis.

    x: (..., C) float32/float64. out: optional (..., C) buffer of x's dtype, overwritten.
    Returns y (..., C). impl: "auto" | "ref" | "cpu" | "cuda" (see ``_dispatch.choose_impl``).
    CPU float32 uses the polynomial exp of ``_fastmath.exp_le0`` (max rel. error 1.2e-7 per
    exp; softmax values within ~3e-7 relative of float64); float64 uses libm exp.
    """
    return _forward(x, out, impl, log=False)


def softmax_backward(y, dy, *, out=None, impl="auto"):
    """Gradient of softmax: dx = y * (dy - sum(dy * y, axis=-1)).

    y: (..., C) the saved softmax output; dy: (..., C) upstream gradient. out: optional
    (..., C) buffer, OVERWRITTEN (not accumulated). Returns dx (..., C).
    """
    return _backward(y, dy, out, impl, log=False)


def log_softmax_forward(x, *, out=None, impl="auto"):
    """Log-softmax over the last axis. x: (..., C). out: optional buffer, overwritten.

    Returns y (..., C) = x - logsumexp(x). An all -inf row gives -inf.
    """
    return _forward(x, out, impl, log=True)


def log_softmax_backward(y, dy, *, out=None, impl="auto"):
    """Gradient of log_softmax: dx = dy - exp(y) * sum(dy, axis=-1).

    y: (..., C) the saved log_softmax output; dy: (..., C). out: optional buffer,
    OVERWRITTEN. Returns dx (..., C).
    """
    return _backward(y, dy, out, impl, log=True)
