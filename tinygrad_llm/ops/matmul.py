"""Matrix products: matmul (batched and broadcast, NumPy's 1-D conventions) and linear.

    C = A @ B,   C[..., i, j] = sum_k A[..., i, k] B[..., k, j]
    dA = dC @ B^T,   dB = A^T @ dC

A 1-D A is treated as a row (1, k) and a 1-D B as a column (k, 1); the added axis is removed
from the result and from the gradients again. Batch axes broadcast, so their gradients are
summed back to each input's batch shape. The common case of a batch of rows times one weight
matrix ((B, T, C) @ (C, D)) is done as one large 2-D GEMM, which BLAS runs much faster than
a loop of small ones.
"""
import math

from ..autograd import Function
from ..kernels.fastnp import array_module
from .array_methods import sum_over
from .broadcasting import unbroadcast


class MatMulError(ValueError, RuntimeError):
    """Shapes or dtypes that cannot be multiplied (PyTorch raises RuntimeError)."""


def _check(a, b, name="matmul"):
    if a.ndim == 0 or b.ndim == 0:
        raise MatMulError(f"{name}: both arguments need at least 1 dimension, got shapes "
                          f"{a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise MatMulError(f"{name}: shapes {a.shape} and {b.shape} cannot be multiplied "
                          f"({k_a} != {k_b})")
    if a.dtype != b.dtype:
        raise MatMulError(f"{name}: expected both arguments to have the same dtype, but got "
                          f"{a.dtype} and {b.dtype}; convert one with .to(dtype)")


def _rows(x):
    """x (..., n) as a 2-D (rows, n) array: the batch axes folded into one (also when empty)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


class MatMul(Function):
    """C = A @ B;   dA = dC @ B^T,  dB = A^T @ dC   (module docstring: 1-D and batches)."""

    def forward(self, a, b):
        _check(a, b)
        self.save_for_backward(a, b)
        xp = array_module(a, b)
        if b.ndim == 2 and a.ndim >= 2:  # rows times one matrix: a single 2-D GEMM
            c = xp.matmul(_rows(a), b)
            return c.reshape(a.shape[:-1] + (b.shape[1],))
        return xp.matmul(a, b)

    def backward(self, g):
        a, b = self.saved
        xp = array_module(g)
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: g is a scalar
            return (g * b if need_a else None), (g * a if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a          # (1, k) row
        b2 = b[:, None] if b.ndim == 1 else b          # (k, 1) column
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)                # put back the row axis
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)                # put back the column axis
        ga = gb = None
        if b2.ndim == 2 and a2.ndim >= 2:              # rows @ matrix: 2-D GEMMs again
            g_rows = _rows(g2)                         # (N, n)
            if need_a:
                ga = xp.matmul(g_rows, b2.T).reshape(a2.shape)
            if need_b:
                gb = xp.matmul(_rows(a2).T, g_rows)
        else:
            if need_a:
                ga = unbroadcast(xp.matmul(g2, xp.swapaxes(b2, -1, -2)), a2.shape)
            if need_b:
                gb = unbroadcast(xp.matmul(xp.swapaxes(a2, -1, -2), g2), b2.shape)
        if ga is not None and a.ndim == 1:
            ga = ga.reshape(a.shape)
        if gb is not None and b.ndim == 1:
            gb = gb.reshape(b.shape)
        return ga, gb


def matmul(input, other):
    return MatMul.apply(input, other)


class Linear(Function):
    """y = x W^T + b   with W (out, in) as in PyTorch; x (..., in), y (..., out).

    dx = dy W,   dW = dy^T x  (summed over all rows),   db = sum of dy over all rows
    One Function instead of transpose + matmul + add: one GEMM per gradient, no unbroadcast.
    """

    def forward(self, x, weight, bias=None):
        self.save_for_backward(x, weight)
        return linear_values(x, weight, bias)

    def backward(self, g):
        x, weight = self.saved
        xp = array_module(g)
        need_x, need_w, need_b = self.needs_input_grad
        g2 = _rows(g)                                                 # (N, out)
        dx = xp.matmul(g2, weight).reshape(x.shape) if need_x else None          # (..., in)
        dw = xp.matmul(g2.T, _rows(x)) if need_w else None                       # (out, in)
        db = sum_over(g2, 0) if need_b else None                      # (out,)
        return dx, dw, db


def linear_values(x, weight, bias=None, name="linear"):
    """x W^T + b on arrays: the forward of Linear (and of ops that end in one)."""
    if x.dtype != weight.dtype:
        raise MatMulError(f"{name}: the input has dtype {x.dtype} but the weight has "
                          f"{weight.dtype}; convert the input with .to({weight.dtype})")
    y = array_module(x, weight).matmul(_rows(x), weight.T)           # (N, out)
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (weight.shape[0],))              # (..., out)


def linear(input, weight, bias=None):
    return Linear.apply(input, weight, bias)
