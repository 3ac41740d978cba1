"""GELU, tanh approximation (GPT-2's), forward and backward in one pass each.

    u = sqrt(2/pi) (x + 0.044715 x^3),   t = tanh(u),   y = 0.5 x (1 + t)
    dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

The backward recomputes t from x (one more tanh per element, vectorized) instead of keeping
it from the forward: a GPT's MLP holds one (B, T, 4C) array per layer less until its backward.

    (a) reference   NumPy/CuPy, written like the equations (a dozen passes over memory)
    (b) numba CPU   one pass per direction; float32 tanh from ``_fastmath.tanh_fast`` (the
                    loop vectorizes; np.tanh alone costs ~4 ns per float32 element here),
                    float64 from libm; elements split across threads in contiguous blocks

On CuPy arrays the reference runs (CuPy's elementwise ops); there is no numba CUDA kernel.
"""
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._fastmath import as_type_of, tanh_fast

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
_BLOCK = 16384            # elements per work item handed to a thread


def gelu_tanh_forward_ref(x):
    """y for x of any shape."""
    t = get_array_module(x).tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))
    return 0.5 * x * (1 + t)


def gelu_tanh_backward_ref(x, dy):
    """dx = dy * dy/dx from x (t = tanh(u) recomputed)."""
    t = get_array_module(x).tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))
    du_dx = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x)
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx)


# fastmath "contract" only (a * b + c as one FMA; no other IEEE rule relaxed) speeds up the
# tanh and exp polynomials, as in the LSTM cell (benchmarks/README.md, session 7).
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _gelu_fwd_cpu(first, stop, step, x, y):
    n = x.shape[0]
    for k in range(first, stop, step):
        lo, hi = k * _BLOCK, min(n, (k + 1) * _BLOCK)
        xb, yb = x[lo:hi], y[lo:hi]          # range(n) loops vectorize, range(lo, hi) ones not
        for j in range(xb.size):
            xj = xb[j]
            u = as_type_of(xj, SQRT_2_OVER_PI) * (xj + as_type_of(xj, GELU_CUBIC) * xj * xj * xj)
            yb[j] = as_type_of(xj, 0.5) * xj * (as_type_of(xj, 1.0) + tanh_fast(u))


@njit(inline="always")
def _gelu_slope(xj):
    """dy/dx of GELU-tanh at one value (the module docstring's formula)."""
    u = as_type_of(xj, SQRT_2_OVER_PI) * (xj + as_type_of(xj, GELU_CUBIC) * xj * xj * xj)
    tj = tanh_fast(u)
    one, half = as_type_of(xj, 1.0), as_type_of(xj, 0.5)
    du_dx = as_type_of(xj, SQRT_2_OVER_PI) * (one + as_type_of(xj, 3 * GELU_CUBIC) * xj * xj)
    return half * (one + tj) + half * xj * (one - tj * tj) * du_dx


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _gelu_bwd_cpu(first, stop, step, x, dy, dx):
    n = x.shape[0]
    for k in range(first, stop, step):
        lo, hi = k * _BLOCK, min(n, (k + 1) * _BLOCK)
        xb, dyb, dxb = x[lo:hi], dy[lo:hi], dx[lo:hi]
        for j in range(xb.size):
            dxb[j] = dyb[j] * _gelu_slope(xb[j])


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _gelu_bwd_inplace_cpu(first, stop, step, x, g):
    """_gelu_bwd_cpu with dx written over dy (g). One array argument for both: LLVM
    vectorizes this loop, while the two-array loop given the same array twice runs scalar
    (its alias check fails), ~10x slower."""
    n = x.shape[0]
    for k in range(first, stop, step):
        lo, hi = k * _BLOCK, min(n, (k + 1) * _BLOCK)
        xb, gb = x[lo:hi], g[lo:hi]
        for j in range(xb.size):
            gb[j] = gb[j] * _gelu_slope(xb[j])


def _flat(xp, a):
    return xp.ascontiguousarray(a).reshape(-1)


def gelu_tanh_forward(x, *, impl="auto"):
    """x: float32/float64 array of any shape. Returns y (x's shape, a new array).
    impl: "auto" | "ref" | "cpu" | "cuda"."""
    D.check_float([("x", x)])
    if D.choose_impl(x, impl=impl) != "cpu":
        return gelu_tanh_forward_ref(x)
    x1 = _flat(np, x)
    y = D.empty_apart(x1.shape, x1.dtype, [x1])
    D.parallel_items(_gelu_fwd_cpu, -(-x1.size // _BLOCK), x1, y,
                     min_items_per_thread=D.MIN_VALUES_PER_THREAD // _BLOCK)
    return y.reshape(x.shape)


def gelu_tanh_backward(x, dy, *, out=None, impl="auto"):
    """x from the forward and dy, the upstream gradient, of one shape. Returns dx, written
    into ``out`` when given (a C-contiguous array of x's shape and dtype; ``out=dy`` writes
    dx over dy, with a loop of its own)."""
    D.check_float([("x", x), ("dy", dy)])
    D.check_shape("dy", dy, x.shape)
    if out is not None:
        D.check_shape("out", out, x.shape)
        if out.dtype != x.dtype or not out.flags.c_contiguous:
            raise ValueError("gelu_tanh_backward: out must be C-contiguous with x's dtype")
    if D.choose_impl(x, dy, impl=impl) != "cpu":
        dx = gelu_tanh_backward_ref(x, dy)
        return dx if out is None else D.write_into(out, dx)
    x1, dy1 = _flat(np, x), _flat(np, dy)
    n_items, min_items = -(-x1.size // _BLOCK), D.MIN_VALUES_PER_THREAD // _BLOCK
    if out is dy:
        D.parallel_items(_gelu_bwd_inplace_cpu, n_items, x1, dy1, min_items_per_thread=min_items)
        return dy
    dx = D.empty_apart(x1.shape, x1.dtype, [x1, dy1]) if out is None else out.reshape(-1)
    D.parallel_items(_gelu_bwd_cpu, n_items, x1, dy1, dx, min_items_per_thread=min_items)
    return dx.reshape(x.shape)
