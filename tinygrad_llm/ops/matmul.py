"""Matrix multiplication, batched and broadcast, with NumPy's 1-D conventions.

    C = A @ B,   C[..., i, j] = sum_k A[..., i, k] B[..., k, j]
    dA = dC @ B^T,   dB = A^T @ dC

A 1-D A is treated as a row (1, k) and a 1-D B as a column (k, 1); the added axis is removed
from the result and from the gradients again. Batch axes broadcast, so their gradients are
summed back to each input's batch shape. The common case of a batch of rows times one weight
matrix ((B, T, C) @ (C, D)) is done as one large 2-D GEMM, which BLAS runs much faster than
a loop of small ones.
"""
from ..autograd import Function
from ..backend import get_array_module
from ..kernels import _blas
from .elementwise import unbroadcast


def _check_shapes(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                         f"({k_a} != {k_b})")


class MatMul(Function):
    """C = A @ B;   dA = dC @ B^T,  dB = A^T @ dC   (module docstring: 1-D and batches)."""

    def forward(self, a, b):
        _check_shapes(a, b)
        self.save_for_backward(a, b)
        if b.ndim == 2 and a.ndim >= 2:  # rows times one matrix: a single 2-D GEMM
            c = _blas.matmul(a.reshape(-1, a.shape[-1]), b)
            return c.reshape(a.shape[:-1] + (b.shape[1],))
        return a @ b

    def backward(self, g):
        a, b = self.saved
        xp = get_array_module(g)
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
            g_rows = g2.reshape(-1, g2.shape[-1])      # (N, n)
            if need_a:
                ga = _blas.matmul(g_rows, b2.T).reshape(a2.shape)
            if need_b:
                gb = _blas.matmul(a2.reshape(-1, a2.shape[-1]).T, g_rows)
        else:
            if need_a:
                ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape)
            if need_b:
                gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape)
        if ga is not None and a.ndim == 1:
            ga = ga.reshape(a.shape)
        if gb is not None and b.ndim == 1:
            gb = gb.reshape(b.shape)
        return ga, gb


def matmul(a, b):
    return MatMul.apply(a, b)
