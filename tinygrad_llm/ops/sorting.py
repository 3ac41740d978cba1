"""Sorting: sort, argsort, topk, kthvalue, msort.

Each returns (or is) the permutation that orders the values along ``dim``; the values are then
``gather(x, dim, indices)``, so their gradient is gather's: the upstream gradient of output
position j is added to the input position indices[j] (and to nothing else).

Ties: sort is stable (equal values keep their order) in both directions. NaN counts as larger
than every number, as in PyTorch: last in an ascending sort, first in a descending one.
"""
import operator
from collections import namedtuple

from ..backend import get_array_module
from .reduce import normalize_dims

SortResult = namedtuple("SortResult", ["values", "indices"])
TopkResult = namedtuple("TopkResult", ["values", "indices"])
KthvalueResult = namedtuple("KthvalueResult", ["values", "indices"])


def _argsort(data, axis, descending):
    """Stable ascending or descending order along ``axis`` (int64 indices).

    Descending: sort the reversed array ascending (stable), reverse that order and map the
    positions back: equal values keep their original order and NaNs come first."""
    xp = get_array_module(data)
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable").astype(xp.int64)
    n = data.shape[axis]
    order = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return (n - 1 - xp.flip(order, axis)).astype(xp.int64)


def _sorted_positions(x, axis, start, stop, descending):
    """(values, indices) at the positions start:stop of x sorted along ``axis``."""
    from ..tensor import Tensor
    from .indexing import gather
    order = _argsort(x.data, axis, descending)
    index = (slice(None),) * axis + (slice(start, stop),)
    indices = Tensor._wrap(get_array_module(order).ascontiguousarray(order[index]))
    return gather(x, axis, indices), indices


def _axis(x, dim, op):
    (axis,) = normalize_dims(dim, x.ndim, op) if x.ndim else (None,)
    return axis


def argsort(x, dim=-1, descending=False, stable=False):
    """The indices that sort x along ``dim`` (int64; the order of ties is kept)."""
    from ..tensor import Tensor
    axis = _axis(x, dim, "argsort")
    if axis is None:   # a 0-d tensor: the only position is 0
        return Tensor._wrap(get_array_module(x.data).zeros((), dtype="int64"))
    return Tensor._wrap(_argsort(x.data, axis, descending))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) with values = x sorted along ``dim``;   d values / dx: see module."""
    from .indexing import gather
    indices = argsort(x, dim, descending)
    axis = _axis(x, dim, "sort")
    if axis is None:
        return SortResult(x * 1, indices)
    return SortResult(gather(x, axis, indices), indices)


def msort(x):
    """x sorted along its first dim."""
    return sort(x, 0).values


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (``largest=False``: smallest) entries along ``dim``.

    The result is always sorted (``sorted=False`` allows any order, so this order is valid).
    """
    if x.ndim == 0:
        if k not in (0, 1):
            raise RuntimeError(f"topk: selected index k out of range (k = {k} for a 0-d tensor)")
        return TopkResult(x * 1, argsort(x))                 # position 0
    axis = _axis(x, dim, "topk")
    n = x.shape[axis]
    k = operator.index(k)
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: selected index k out of range (k = {k}, dimension {axis} "
                           f"has size {n})")
    return TopkResult(*_sorted_positions(x, axis, 0, k, descending=largest))


def kthvalue(x, k, dim=-1, keepdim=False):
    """(values, indices) of the k-th smallest entry (k counts from 1) along ``dim``."""
    from .shape import squeeze
    if x.ndim == 0:
        if k != 1:
            raise RuntimeError(f"kthvalue: selected index k out of range (k = {k} for a 0-d "
                               "tensor)")
        return KthvalueResult(x * 1, argsort(x))             # position 0
    axis = _axis(x, dim, "kthvalue")
    n = x.shape[axis]
    k = operator.index(k)
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: selected index k out of range (k = {k}, dimension "
                           f"{axis} has size {n})")
    values, indices = _sorted_positions(x, axis, k - 1, k, descending=False)
    if not keepdim:
        values, indices = squeeze(values, axis), squeeze(indices, axis)
    return KthvalueResult(values, indices)
