"""Layer normalization over the last axis: forward and backward.

Shape legend: x, y, dy, dx are (..., C); the kernels see (N, C) with N the product of the
leading axes. weight, bias, dweight, dbias are (C,); mean, rstd are (...,) i.e. x.shape[:-1].

    mean = sum_c x_c / C            var = sum_c (x_c - mean)^2 / C   (biased, as PyTorch)
    rstd = 1 / sqrt(var + eps)      xhat = (x - mean) * rstd          y = xhat * weight + bias

Backward, with dxhat = dy * weight (or dy when weight is None):
    dbias   = sum over rows of dy
    dweight = sum over rows of dy * xhat
    dx      = rstd * (dxhat  -  mean_c(dxhat)  -  xhat * mean_c(dxhat * xhat))
                       term 1      term 2            term 3
  term 1 is the direct path through xhat, term 2 the path through the mean, term 3 the path
  through the variance (rstd).

Numerics: mean and variance are two passes (no E[x^2] - E[x]^2 cancellation); a constant row
gives xhat = 0 and a finite gradient (rstd = 1/sqrt(eps)). Row sums, dweight and dbias are
accumulated in float64 (per thread, then summed), so float32 sums over many rows keep their
precision.

Order: (a) reference, (b) numba CPU kernels, (c) CUDA kernels, then ``layer_norm_forward`` /
``layer_norm_backward``.
"""
import functools
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._cuda_utils import TPB_MAX, block_sum, cuda, cuda_jit
from ._fastmath import as_type_of

# No "contract": fusing dy * w into the float64 row sums (an FMA) would make term 2 differ from
# term 1 by an ulp, which rstd (up to 1/sqrt(eps)) then amplifies on near-constant rows.
FASTMATH = {"reassoc", "nsz", "arcp"}


# ---------------------------------------------------------------------------------------------
# (a) Reference
# ---------------------------------------------------------------------------------------------

def layer_norm_forward_ref(x, weight, bias, eps):
    xp = get_array_module(x)
    mean = x.mean(axis=-1)                                        # (...,)
    xc = x - mean[..., None]                                      # (..., C)
    var = (xc * xc).mean(axis=-1)                                 # (...,)
    rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)             # (...,)
    y = xc * rstd[..., None]                                      # xhat (..., C)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype), mean, rstd


def layer_norm_backward_ref(dy, x, weight, mean, rstd, has_bias=True):
    c = x.shape[-1]
    rows = tuple(range(x.ndim - 1))
    xhat = (x - mean[..., None]) * rstd[..., None]                # (..., C)
    dbias = dy.sum(axis=rows) if has_bias else None               # (C,)
    dweight = (dy * xhat).sum(axis=rows) if weight is not None else None
    dxhat = dy * weight if weight is not None else dy             # (..., C)
    term2 = dxhat.sum(axis=-1, keepdims=True) / c                 # mean_c(dxhat)
    term3 = xhat * ((dxhat * xhat).sum(axis=-1, keepdims=True) / c)
    dx = rstd[..., None] * (dxhat - term2 - term3)
    return dx.astype(x.dtype), dweight, dbias


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernels (serial nogil loops over row shares; see _dispatch.parallel_items)
# ---------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _ln_fwd_cpu(first, stop, step, x, w, b, has_w, has_b, eps, y, mean, rstd):
    """x, y (N, C); w, b (C,) or dummies; mean, rstd (N,). y, mean, rstd overwritten."""
    c = x.shape[1]
    for i in range(first, stop, step):
        xi = x[i]
        s = 0.0                                 # float64 sums (cheap: C per row)
        for j in range(c):
            s += xi[j]
        mu64 = s / c
        v = 0.0
        for j in range(c):
            t = xi[j] - mu64
            v += t * t
        mu = as_type_of(eps, mu64)              # back to x's dtype for the vector loop
        r = as_type_of(eps, 1.0 / math.sqrt(v / c + eps))
        mean[i] = mu
        rstd[i] = r
        yi = y[i]
        for j in range(c):
            t = (xi[j] - mu) * r
            if has_w:
                t = t * w[j]
            if has_b:
                t = t + b[j]
            yi[j] = t


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _ln_bwd_cpu(first, stop, step, dy, x, w, has_w, mean, rstd, dx, part_w, part_b):
    """Work items are row chunks: chunk k covers rows [k*N/K, (k+1)*N/K) with K =
    part_w.shape[0], and writes its float64 partial sums of dy*xhat and dy into part_w[k],
    part_b[k]. dx (N, C) is overwritten."""
    n, c = x.shape
    n_chunks = part_w.shape[0]
    for k in range(first, stop, step):
        pw = part_w[k]
        pb = part_b[k]
        pw[:] = 0.0
        pb[:] = 0.0
        for i in range(n * k // n_chunks, n * (k + 1) // n_chunks):
            xi = x[i]
            dyi = dy[i]
            mu = mean[i]
            r = rstd[i]
            s1 = 0.0                            # sum_c dxhat (float64)
            s2 = 0.0                            # sum_c dxhat * xhat
            for j in range(c):
                xh = (xi[j] - mu) * r
                g = dyi[j] * w[j] if has_w else dyi[j]
                s1 += g
                s2 += g * xh
                pw[j] += dyi[j] * xh
                pb[j] += dyi[j]
            m1 = as_type_of(r, s1 / c)          # term 2: mean_c(dxhat)
            m2 = as_type_of(r, s2 / c)          # term 3 factor: mean_c(dxhat * xhat)
            dxi = dx[i]
            for j in range(c):
                xh = (xi[j] - mu) * r
                g = dyi[j] * w[j] if has_w else dyi[j]
                dxi[j] = r * (g - m1 - xh * m2)


# ---------------------------------------------------------------------------------------------
# (c) Numba CUDA kernels: forward and dx one block per row, row sums in float64 (as the CPU
#     kernels), mean/rstd rounded to x's dtype for the elementwise pass; dweight/dbias as
#     float64 partial sums over row chunks (a 2-D grid: column blocks x row chunks), then one
#     CuPy sum over the chunks. (One thread per column over all N rows ran ceil(C/256) blocks
#     on a GPU of 132 SMs, each thread walking N rows serially.)
# ---------------------------------------------------------------------------------------------

DWDB_ROWS_PER_CHUNK = 32
MAX_GRID_Y = 65535


@functools.lru_cache(maxsize=None)
def _cuda_kernels(dtype_char):
    acc = np.float32 if dtype_char == "f" else np.float64

    @cuda_jit
    def fwd(x, w, b, has_w, has_b, eps, y, mean, rstd):
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        scratch = cuda.shared.array(TPB_MAX, dtype=np.float64)
        c = x.shape[1]
        s = 0.0                                 # float64 sums
        for j in range(tid, c, nt):
            s += x[row, j]
        mu64 = block_sum(scratch, s) / c
        v = 0.0
        for j in range(tid, c, nt):
            t = x[row, j] - mu64
            v += t * t
        mu = acc(mu64)                          # back to x's dtype for the elementwise pass
        r = acc(1.0 / math.sqrt(block_sum(scratch, v) / c + eps))
        if tid == 0:
            mean[row] = mu
            rstd[row] = r
        for j in range(tid, c, nt):
            t = (x[row, j] - mu) * r
            if has_w:
                t = t * w[j]
            if has_b:
                t = t + b[j]
            y[row, j] = t

    @cuda_jit
    def bwd_dx(dy, x, w, has_w, mean, rstd, dx):
        row = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        scratch = cuda.shared.array(TPB_MAX, dtype=np.float64)
        c = x.shape[1]
        mu = mean[row]
        r = rstd[row]
        s1 = 0.0                                # sum_c dxhat (float64)
        s2 = 0.0                                # sum_c dxhat * xhat
        for j in range(tid, c, nt):
            g = dy[row, j] * w[j] if has_w else dy[row, j]
            s1 += g
            s2 += g * ((x[row, j] - mu) * r)
        m1 = acc(block_sum(scratch, s1) / c)    # term 2: mean_c(dxhat)
        m2 = acc(block_sum(scratch, s2) / c)    # term 3 factor: mean_c(dxhat * xhat)
        for j in range(tid, c, nt):
            xh = (x[row, j] - mu) * r
            g = dy[row, j] * w[j] if has_w else dy[row, j]
            dx[row, j] = r * (g - m1 - xh * m2)

    @cuda_jit
    def bwd_dwdb(dy, x, mean, rstd, part_w, part_b):
        """Block (bx, k): columns bx*nt .. bx*nt+nt-1 over the rows of chunk k."""
        j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        k = cuda.blockIdx.y
        n = x.shape[0]
        n_chunks = part_w.shape[0]
        if j < x.shape[1]:
            sw = 0.0                            # float64 partial sums of chunk k
            sb = 0.0
            for i in range(n * k // n_chunks, n * (k + 1) // n_chunks):
                sw += dy[i, j] * ((x[i, j] - mean[i]) * rstd[i])
                sb += dy[i, j]
            part_w[k, j] = sw
            part_b[k, j] = sb

    return fwd, bwd_dx, bwd_dwdb


def _backward_cuda(xp, dy2, x2, w, has_w, m1, r1, dx2):
    """Launch the backward kernels on (N, C) arrays: dx2 overwritten; returns (dw, db) (C,)."""
    _, bwd_dx, bwd_dwdb = _cuda_kernels(x2.dtype.char)
    n, c = x2.shape
    tpb = D.cuda_threads_per_block()
    if n > 0:
        bwd_dx[n, tpb](dy2, x2, w, has_w, m1, r1, dx2)
    n_chunks = max(1, min(n // DWDB_ROWS_PER_CHUNK, MAX_GRID_Y))
    part_w = xp.empty((n_chunks, c), dtype=np.float64)
    part_b = xp.empty((n_chunks, c), dtype=np.float64)
    bwd_dwdb[((c + tpb - 1) // tpb, n_chunks), tpb](dy2, x2, m1, r1, part_w, part_b)
    return part_w.sum(axis=0).astype(x2.dtype), part_b.sum(axis=0).astype(x2.dtype)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def _check(x, weight, bias):
    D.check_float([("x", x), ("weight", weight), ("bias", bias)])
    c = x.shape[-1] if x.ndim else 0
    if x.ndim == 0 or c == 0:
        raise ValueError(f"layer_norm needs x of shape (..., C) with C > 0, got {tuple(x.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (c,):
            raise ValueError(f"{name} has shape {tuple(p.shape)}, expected ({c},) for x of "
                             f"shape {tuple(x.shape)}")
    return c


def _param(xp, p, dtype):
    return (xp.ascontiguousarray(p), True) if p is not None else (xp.zeros(1, dtype), False)


def layer_norm_forward(x, weight=None, bias=None, eps=1e-5, *, out=None, impl="auto"):
    """y = (x - mean) * rstd * weight + bias over the last axis.

    x: (..., C) float32/float64; weight, bias: (C,) or None; eps: float.
    out: optional (..., C) buffer for y, overwritten.
    Returns (y (..., C), mean (...,), rstd (...,)); save x, weight, mean, rstd for backward.
    """
    xp = get_array_module(x, weight, bias)
    c = _check(x, weight, bias)
    which = D.choose_impl(x, weight, bias, out, impl=impl)
    out = D.prepare_out(out, "out", x.shape, x.dtype, xp)
    if which == "ref":
        y, mean, rstd = layer_norm_forward_ref(x, weight, bias, eps)
        return D.write_into(out, y), mean, rstd
    x2 = D.contiguous(xp, x).reshape(-1, c)                         # (N, C)
    n = x2.shape[0]
    y2 = out.reshape(n, c) if out.flags.c_contiguous else xp.empty_like(x2)
    mean = xp.empty(n, dtype=x.dtype)
    rstd = xp.empty(n, dtype=x.dtype)
    w, has_w = _param(xp, weight, x.dtype)
    b, has_b = _param(xp, bias, x.dtype)
    eps_t = x.dtype.type(eps)
    if which == "cpu":
        D.parallel_items(_ln_fwd_cpu, n, x2, w, b, has_w, has_b, eps_t, y2, mean, rstd,
                         min_items_per_thread=max(1, D.MIN_VALUES_PER_THREAD // c))
    elif n > 0:
        _cuda_kernels(x.dtype.char)[0][n, D.cuda_threads_per_block()](
            x2, w, b, has_w, has_b, eps_t, y2, mean, rstd)
    lead = x.shape[:-1]
    return D.write_into(out, y2.reshape(x.shape)), mean.reshape(lead), rstd.reshape(lead)


def layer_norm_backward(dy, x, weight, mean, rstd, *, has_bias=True, out=None, impl="auto"):
    """Gradients of ``layer_norm_forward``.

    dy, x: (..., C); weight: (C,) or None; mean, rstd: (...,) from the forward.
    has_bias: whether the forward had a bias (else dbias is None).
    out: optional (..., C) buffer for dx, OVERWRITTEN.
    Returns (dx (..., C), dweight (C,) or None, dbias (C,) or None), all freshly computed
    (OVERWRITE semantics: a caller accumulating into .grad adds them itself).
    """
    xp = get_array_module(dy, x, weight, mean, rstd)
    c = _check(x, weight, None)
    D.check_float([("x", x), ("dy", dy), ("mean", mean), ("rstd", rstd)])
    D.check_shape("dy", dy, x.shape)
    D.check_shape("mean", mean, x.shape[:-1])
    D.check_shape("rstd", rstd, x.shape[:-1])
    which = D.choose_impl(dy, x, weight, mean, rstd, out, impl=impl)
    out = D.prepare_out(out, "out", x.shape, x.dtype, xp)
    if which == "ref":
        dx, dw, db = layer_norm_backward_ref(dy, x, weight, mean, rstd, has_bias)
        return D.write_into(out, dx), dw, db
    x2 = D.contiguous(xp, x).reshape(-1, c)                         # (N, C)
    dy2 = D.contiguous(xp, dy).reshape(x2.shape)                    # (N, C)
    m1 = D.contiguous(xp, mean).reshape(-1)                         # (N,)
    r1 = D.contiguous(xp, rstd).reshape(-1)                         # (N,)
    n = x2.shape[0]
    dx2 = out.reshape(n, c) if out.flags.c_contiguous else xp.empty_like(x2)
    w, has_w = _param(xp, weight, x.dtype)
    if which == "cpu":
        n_chunks = max(1, min(D.num_threads(), n * c // D.MIN_VALUES_PER_THREAD))
        part_w = np.empty((n_chunks, c), dtype=np.float64)
        part_b = np.empty((n_chunks, c), dtype=np.float64)
        D.parallel_items(_ln_bwd_cpu, n_chunks, dy2, x2, w, has_w, m1, r1, dx2, part_w,
                         part_b)
        dw = part_w.sum(axis=0).astype(x.dtype)
        db = part_b.sum(axis=0).astype(x.dtype)
    else:
        dw, db = _backward_cuda(xp, dy2, x2, w, has_w, m1, r1, dx2)
    dx = D.write_into(out, dx2.reshape(x.shape))
    return dx, (dw if weight is not None else None), (db if has_bias else None)
