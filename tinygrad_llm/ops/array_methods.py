"""xp.reshape, xp.sum, xp.astype and xp.cumsum for backward formulas, fast on arrays.

A backward formula calls NumPy's functions by name (``xp.reshape(g, shape)``) so that the same
code runs on Tensors when the backward pass is recorded (create_graph=True; see backprop.py).
On raw arrays NumPy's functions cost 1-3 us more per call than the array's own methods, which
shows in the per-op overhead of small tensors; these helpers call the method on arrays and the
function on Tensors, and compute the same thing either way.
"""
from ..autograd import records_graph
from ..backend import get_array_module


def reshape(a, shape):
    """xp.reshape(a, shape)."""
    return get_array_module(a).reshape(a, shape) if records_graph(a) else a.reshape(shape)


def sum_over(a, axis, keepdims=False):
    """xp.sum(a, axis=axis, keepdims=keepdims)."""
    if records_graph(a):
        return get_array_module(a).sum(a, axis=axis, keepdims=keepdims)
    return a.sum(axis=axis, keepdims=keepdims)


def as_dtype(a, dtype):
    """xp.astype(a, dtype, copy=False): ``a`` itself when it has the dtype already."""
    if records_graph(a):
        return get_array_module(a).astype(a, dtype, copy=False)
    return a.astype(dtype, copy=False)


def cumsum(a, axis):
    """xp.cumsum(a, axis)."""
    return get_array_module(a).cumsum(a, axis) if records_graph(a) else a.cumsum(axis)
