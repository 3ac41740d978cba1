"""Embedding backward: the gradient of a row lookup, a scatter-add of the output gradient.

Forward (a gather, no kernel needed):   y[n] = W[ids[n]]                         y: (N, C)
Backward:                               dW[v] = sum over n with ids[n] == v of dy[n]
                                        dW[padding_idx] = 0                      dW: (V, C)

Repeated ids must ADD (``dW[ids] += dy`` in NumPy would keep only one of them), so the
reference uses ``np.add.at`` / ``cupyx.scatter_add``, which is exact but slow on the CPU (an
order of magnitude behind the plain loop below; benchmarks/README.md).

    (a) reference   ``backend.scatter_add`` (np.add.at / cupyx.scatter_add)
    (b) numba CPU   one pass over the ids per thread; the threads split the C columns, so no
                    two threads ever write the same element and the sums are deterministic
                    (each dW element adds its contributions in the order of n, as the
                    reference does)

On CuPy arrays the reference is already a single atomic-add kernel (cupyx.scatter_add), so
"cuda" runs it; there is no separate numba CUDA kernel.
"""
import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module, scatter_add

from . import _dispatch as D


def embedding_backward_ref(ids, dy, num_rows, padding_idx=None):
    """dW (num_rows, C) from ids (N,) and dy (N, C): repeated ids add up."""
    xp = get_array_module(dy)
    dw = xp.zeros((num_rows, dy.shape[1]), dtype=dy.dtype)
    scatter_add(dw, ids, dy)
    if padding_idx is not None:
        dw[padding_idx] = 0
    return dw


@njit(cache=True, nogil=True)
def _scatter_columns_cpu(first, stop, step, ids, dy, dw):
    """Columns blocks first, first + step, .. < stop (64 columns each): dw[ids[n]] += dy[n]."""
    C = dy.shape[1]
    for k in range(first, stop, step):
        c0, c1 = k * 64, min(C, (k + 1) * 64)
        for n in range(ids.shape[0]):
            row, src = dw[ids[n], c0:c1], dy[n, c0:c1]   # range(n) loops vectorize
            for c in range(row.size):
                row[c] += src[c]


def embedding_backward(ids, dy, num_rows, *, padding_idx=None, impl="auto"):
    """Gradient of ``W[ids]`` with respect to W.

    ids: (N,) integer array, every id in [0, num_rows) (the caller checks; the forward's
    lookup already raised IndexError otherwise). dy: (N, C) float32/float64, the gradient of
    the looked-up rows. padding_idx: a row that gets no gradient. Returns dW (num_rows, C), a
    new array. impl: "auto" | "ref" | "cpu" | "cuda" (see ``_dispatch.choose_impl``).
    """
    D.check_float([("dy", dy)])
    if ids.ndim != 1 or dy.ndim != 2 or ids.shape[0] != dy.shape[0]:
        raise ValueError(f"embedding_backward: ids must be (N,) and dy (N, C); got ids "
                         f"{tuple(ids.shape)} and dy {tuple(dy.shape)}")
    which = D.choose_impl(dy, impl=impl)
    if which != "cpu":
        return embedding_backward_ref(ids, dy, num_rows, padding_idx)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dy = np.ascontiguousarray(dy)
    dw = D.empty((num_rows, dy.shape[1]), dy.dtype)      # pooled: a fill, no page faults
    dw.fill(0)
    n_blocks = (dy.shape[1] + 63) // 64
    if ids.shape[0] > 0:
        D.parallel_items(_scatter_columns_cpu, n_blocks, ids, dy, dw,
                         min_items_per_thread=max(1, 65536 // (64 * ids.shape[0])))
    if padding_idx is not None:
        dw[padding_idx] = 0
    return dw
