"""NumPy as the ops compute with it on the CPU: numpy itself, with a few functions made fast.

This module is the one seam between the formulas and the speed. The ops and autograd write
their formulas in the NumPy API on ``xp = array_module(x)`` (``xp.matmul(x, w.T)``,
``xp.empty(shape, dtype)``), and what ``xp`` is decides how fast they run:

    CuPy arrays                   cupy (the GPU)
    NumPy arrays                  this module: every public name of numpy, except
        empty, empty_like,          large buffers come from the kernels' buffer pool
        ascontiguousarray,          (kernels/_buffer_pool.py), so that writing a fresh output
        add, reshape, take          does not page-fault at every training step (a new
                                    2 MiB array costs ~1.3 ms of faults on this VM, several
                                    times the arithmetic)
        matmul                      2-D float products run on the kernels' one thread pool
                                    (kernels/_blas.py): OpenBLAS's own threads keep spinning
                                    after each call and slow the numba kernels that follow
    TINYGRAD_LLM_KERNELS=ref      matmul is plain numpy.matmul (read at each call)

Nothing here changes a result: a pooled buffer is an uninitialized array like numpy.empty's,
and the threaded product computes the same sums (each thread runs BLAS on a block of rows).
"""
import builtins
import sys

import numpy as np

from tinygrad_llm import backend

from . import _blas, _buffer_pool, _dispatch
from ._buffer_pool import MIN_BYTES as POOLED_BYTES  # noqa: F401  (pooled from this size on)

# Every public name of NumPy (xp.where, xp.float32, xp.ndarray, ...) is NumPy's own object.
globals().update({name: value for name, value in vars(np).items() if not name.startswith("_")})


def empty(shape, dtype=np.float64):
    """numpy.empty; large arrays from the buffer pool (uninitialized, C-contiguous)."""
    if shape.__class__ is not tuple:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _dispatch.empty(shape, dtype)


def empty_like(a, dtype=None, order="C"):
    """numpy.empty_like; large arrays from the buffer pool. order="C" (the default here, where
    NumPy's is "K"): C-contiguous. order="K": laid out in memory as ``a`` is (axes ordered by
    a's strides), e.g. a (B, H, T, D) view of a (B, T, H, D) array gets (B, T, H, D) memory;
    C-contiguous when ``a`` has a zero or negative stride (a broadcast or reversed view)."""
    if order not in ("C", "K"):
        raise ValueError(f"empty_like: order must be 'C' or 'K', got {order!r}")
    dtype = a.dtype if dtype is None else dtype
    if order == "K" and not a.flags.c_contiguous and builtins.min(a.strides, default=1) > 0:
        outer_first = builtins.sorted(range(a.ndim), key=lambda i: -a.strides[i])
        buf = empty(tuple(a.shape[i] for i in outer_first), dtype)
        return buf.transpose(np.argsort(outer_first))
    return empty(a.shape, dtype)


def ascontiguousarray(a, dtype=None):
    """numpy.ascontiguousarray; the copy of a large non-contiguous array (a transposed view,
    say) goes into a pooled buffer."""
    if dtype is not None:
        return np.ascontiguousarray(a, dtype=dtype)
    return _dispatch.contiguous(np, a)


def add(a, b):
    """a + b for any operands (NumPy or CuPy arrays, Tensors, numbers); a large NumPy result is
    written into pooled memory (see ``_pooled_result``). Backward sums the gradients that reach
    one node with it. (The size test is written out, not a helper: it runs for every sum.)"""
    if ((a.__class__ is np.ndarray and a.nbytes >= POOLED_BYTES)
            or (b.__class__ is np.ndarray and b.nbytes >= POOLED_BYTES)):
        out = _pooled_result(a, b)
        if out is not None:
            return np.add(a, b, out=out)
    return a + b


def _pooled_result(a, b):
    """A pooled array for the result of a binary ufunc on a and b (one of them a large NumPy
    array), or None (the operator allocates): pooled when a and b are NumPy arrays of one dtype, or
    one is a Python number and the other a float array (the result keeps the array's dtype)."""
    a_array, b_array = a.__class__ is np.ndarray, b.__class__ is np.ndarray
    if a_array and b_array:
        if a.dtype != b.dtype:
            return None
        shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
        return _dispatch.empty(shape, a.dtype)
    array, number = (a, b) if a_array else (b, a)
    if array.dtype.kind != "f" or number.__class__ not in (float, int):
        return None
    return _dispatch.empty(array.shape, array.dtype)


_RESHAPE_TAKES_COPY = np.lib.NumpyVersion(np.__version__) >= "2.1.0"   # reshape(copy=False)


def reshape(a, shape):
    """a.reshape(shape) (a tuple) for any array or Tensor; when a large NumPy array needs a
    copy for its new shape (a transposed view), the copy goes into a pooled buffer."""
    if (a.__class__ is np.ndarray and a.nbytes >= POOLED_BYTES and not a.flags.c_contiguous
            and _RESHAPE_TAKES_COPY):
        try:
            return np.reshape(a, shape, copy=False)      # a view, or ValueError
        except ValueError:
            return _dispatch.contiguous(np, a).reshape(shape)
    return a.reshape(shape)


def take(a, indices, axis=None, out=None, mode="raise"):
    """numpy.take. With ``out`` and mode="raise", NumPy fills a temporary copy of ``out`` and
    copies it over (its documented buffering); here the indices are checked first, with
    NumPy's error, and the values written straight into ``out``."""
    if out is None or mode != "raise" or a.__class__ is not np.ndarray:
        return np.take(a, indices, axis=axis, out=out, mode=mode)
    n = a.size if axis is None else a.shape[axis]
    indices = np.asarray(indices)
    if indices.size:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise IndexError(f"index {bad} is out of bounds for axis {axis or 0} with size {n}")
    return np.take(a, indices, axis=axis, out=out, mode="wrap")    # in range: wrap = raise


def memory_is_private(a):
    """True when no other live array shares ``a``'s memory: ``a`` owns it, or the array it is
    a view of (a pooled buffer included) is held by ``a`` alone. (CPython's reference counts,
    compared with those of a view made to be alone, measured below.)"""
    if a.__class__ is not np.ndarray:
        return False
    base = a.base
    if base is None:
        return True
    if base.__class__ is not np.ndarray:
        return False
    pooled = base.base is not None and _buffer_pool.is_pool_buffer(base)
    if base.base is not None and not pooled:
        return False
    return _refs(base) == _SOLE_VIEW_BASE_REFS + pooled     # + the pool's own list entry


def _refs(x):
    return sys.getrefcount(x)


def _sole_view_base_refs():
    a = np.empty(2)[:1]                  # a view whose owner nothing else holds
    base = a.base
    return _refs(base)


_SOLE_VIEW_BASE_REFS = _sole_view_base_refs()


def matmul(a, b, out=None):
    """numpy.matmul; 2-D float products split by rows (or columns) over the thread pool."""
    if (out is not None or a.ndim != 2 or b.ndim != 2
            or _dispatch.env_setting() == "ref"):
        return np.matmul(a, b, out=out)
    return _blas.matmul(a, b)


def array_module(*arrays):
    """The module the ops compute with: cupy for CuPy arrays, else this module (see above);
    for a Tensor, tinygrad_llm/tensor_namespace.py (NumPy's names over differentiable ops)."""
    for a in arrays:
        if a.__class__ is not np.ndarray:
            if backend.is_cupy_array(a):
                return backend.cupy
            namespace = getattr(a.__class__, "_array_namespace", None)
            if namespace is not None:    # a Tensor: the backward pass is being recorded
                return namespace
    return _this_module


_this_module = sys.modules[__name__]
