"""Tests and logic on values: isfinite, isinf, isnan, isposinf, isneginf, logical_not, _and,
_or, _xor, and the reductions any and all. Each returns a bool tensor and has no gradient (it
is piecewise constant).

The logical functions treat any non-zero value as True, as PyTorch does.
"""
from ..backend import get_array_module
from .reduce import normalize_dims


def _wrap(array):
    from ..tensor import Tensor
    return Tensor._wrap(array)


def _raw(x):
    from ..tensor import Tensor
    return x.data if isinstance(x, Tensor) else x


def isfinite(x):
    xp = get_array_module(x.data)
    if x.dtype.kind not in "fc":               # integers and bools are always finite
        return _wrap(xp.ones(x.shape, dtype=bool))
    return _wrap(xp.isfinite(x.data))


def isinf(x):
    xp = get_array_module(x.data)
    if x.dtype.kind not in "fc":
        return _wrap(xp.zeros(x.shape, dtype=bool))
    return _wrap(xp.isinf(x.data))


def isposinf(x):
    return _wrap(isinf(x).data & (x.data > 0))


def isneginf(x):
    return _wrap(isinf(x).data & (x.data < 0))


def isnan(x):
    return _wrap(x.data != x.data)             # NaN is the only value unequal to itself


def logical_not(x):
    return _wrap(get_array_module(x.data).logical_not(x.data))


def logical_and(a, b):
    return _wrap(get_array_module(_raw(a)).logical_and(_raw(a), _raw(b)))


def logical_or(a, b):
    return _wrap(get_array_module(_raw(a)).logical_or(_raw(a), _raw(b)))


def logical_xor(a, b):
    return _wrap(get_array_module(_raw(a)).logical_xor(_raw(a), _raw(b)))


def _logic_reduce(x, dim, keepdim, name):
    data = x.data
    axes = normalize_dims(dim, data.ndim, name)
    fn = data.any if name == "any" else data.all
    return _wrap(get_array_module(data).asarray(fn(axis=axes, keepdims=keepdim)))


def any(x, dim=None, keepdim=False):
    """True where any element over ``dim`` is non-zero (a bool tensor, no gradient)."""
    return _logic_reduce(x, dim, keepdim, "any")


def all(x, dim=None, keepdim=False):
    """True where every element over ``dim`` is non-zero (a bool tensor, no gradient)."""
    return _logic_reduce(x, dim, keepdim, "all")
