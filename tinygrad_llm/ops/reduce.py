"""Reductions: sum, mean, var, amax/amin, max/min with indices, argmax, logsumexp.

``dim`` is None (all axes), an int or a tuple of ints, negative allowed; ``keepdim`` keeps the
reduced axes with size 1. Every backward first re-inserts the reduced axes into the incoming
gradient (``_expand_reduced``) so that it broadcasts against the input.

Ties in amax/amin: the gradient is split evenly among the tied maxima (as torch.amax).
max(dim)/min(dim) return (values, indices) like PyTorch; their gradient goes to the returned
index only (the first maximum).
"""
from collections import namedtuple

from ..autograd import Function
from ..backend import get_array_module


def normalize_dims(dim, ndim, op="reduction"):
    """A sorted tuple of non-negative axes; IndexError names a dim that is out of range."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    size = ndim if ndim > 0 else 1  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    out = []
    for d in dims:
        if not -size <= d < size:
            raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                             f"[{-size}, {size - 1}], but got {d})")
        out.append(d % ndim if ndim else None)
    if ndim == 0:
        return ()
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} names an axis twice")
    return tuple(sorted(out))


def _broadcast_back(g, in_shape):
    """A fresh array of ``in_shape`` holding g broadcast over the reduced axes.

    (Cheaper than np.broadcast_to for the small tensors where per-op overhead matters, and a
    real array that later steps may write to.)
    """
    out = get_array_module(g).empty(in_shape, dtype=g.dtype)
    out[...] = g
    return out


def _expand_reduced(g, in_shape, axes, keepdim):
    """Reshape a reduced gradient so that it broadcasts against the input."""
    if keepdim or not axes:
        return g
    shape = [1 if i in axes else n for i, n in enumerate(in_shape)]
    return g.reshape(shape)


class Sum(Function):
    """y = sum_i x_i over the axes;   dy/dx_i = 1 (the gradient is broadcast back)."""

    def forward(self, x, axes, keepdim):
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return get_array_module(x).asarray(x.sum(axis=axes, keepdims=keepdim))

    def backward(self, g):
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        return _broadcast_back(g, self.in_shape)


def sum(x, dim=None, keepdim=False):
    return Sum.apply(x, normalize_dims(dim, x.ndim, "sum"), keepdim)


class Mean(Function):
    """y = (1/n) sum_i x_i;   dy/dx_i = 1/n,  n = the number of reduced elements."""

    def forward(self, x, axes, keepdim):
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.n = 1
        for a in axes:
            self.n *= x.shape[a]
        return get_array_module(x).asarray(x.mean(axis=axes, keepdims=keepdim))

    def backward(self, g):
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        return _broadcast_back(g / self.n, self.in_shape)


def mean(x, dim=None, keepdim=False):
    return Mean.apply(x, normalize_dims(dim, x.ndim, "mean"), keepdim)


class Var(Function):
    """y = sum_i (x_i - mean)^2 / (n - correction)

    dy/dx_i = 2 (x_i - mean) / (n - correction)   (the mean's own dependence on x_i cancels,
    because the deviations sum to zero).
    """

    def forward(self, x, axes, keepdim, correction):
        xp = get_array_module(x)
        n = 1
        for a in axes:
            n *= x.shape[a]
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.denom = n - correction if n > correction else 0
        d = x - x.mean(axis=axes, keepdims=True)
        self.save_for_backward(d)
        with _quiet(xp):  # n - correction = 0 gives inf/nan, as in PyTorch
            return xp.asarray((d * d).sum(axis=axes, keepdims=keepdim) / self.denom)

    def backward(self, g):
        (d,) = self.saved
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        with _quiet(get_array_module(d)):
            return (2 * g * d) / self.denom


def var(x, dim=None, keepdim=False, correction=1):
    return Var.apply(x, normalize_dims(dim, x.ndim, "var"), keepdim, correction)


def std(x, dim=None, keepdim=False, correction=1):
    """sqrt(var): composed of two ops, so its derivative is var's times 1 / (2 std)."""
    return var(x, dim, keepdim, correction).sqrt()


class Amax(Function):
    """y = max_i x_i over the axes;   dy/dx_i = 1 / (number of ties) where x_i == y, else 0."""

    def forward(self, x, axes, keepdim, use_min):
        xp = get_array_module(x)
        if x.size == 0:
            raise ValueError(f"amax/amin of an empty tensor of shape {x.shape}")
        y = x.min(axis=axes, keepdims=True) if use_min else x.max(axis=axes, keepdims=True)
        self.save_for_backward(x, y)
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return xp.asarray(y if keepdim else y.reshape([n for i, n in enumerate(x.shape)
                                                        if i not in axes]))

    def backward(self, g):
        x, y = self.saved
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        hit = x == y
        count = hit.sum(axis=self.axes, keepdims=True)
        return g * hit / count


def amax(x, dim=None, keepdim=False):
    return Amax.apply(x, normalize_dims(dim, x.ndim, "amax"), keepdim, False)


def amin(x, dim=None, keepdim=False):
    return Amax.apply(x, normalize_dims(dim, x.ndim, "amin"), keepdim, True)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _arg_reduce(x, dim, keepdim, use_min):
    from ..tensor import Tensor
    data = x.data
    xp = get_array_module(data)
    if data.size == 0:
        raise ValueError(f"argmax/argmin of an empty tensor of shape {data.shape}")
    if dim is None:
        flat = data.argmin() if use_min else data.argmax()
        idx = xp.asarray(flat, dtype=xp.int64)
        return Tensor._wrap(idx.reshape((1,) * data.ndim) if keepdim else idx)
    (axis,) = normalize_dims(dim, data.ndim, "argmax")
    idx = data.argmin(axis=axis, keepdims=keepdim) if use_min else data.argmax(
        axis=axis, keepdims=keepdim)
    return Tensor._wrap(xp.asarray(idx, dtype=xp.int64))


def argmax(x, dim=None, keepdim=False):
    return _arg_reduce(x, dim, keepdim, False)


def argmin(x, dim=None, keepdim=False):
    return _arg_reduce(x, dim, keepdim, True)


def _max_min(x, dim, keepdim, use_min):
    if dim is None:
        return Amax.apply(x, normalize_dims(None, x.ndim), False, use_min)
    from .indexing import gather
    from .shape import squeeze
    (axis,) = normalize_dims(dim, x.ndim, "max")
    idx = _arg_reduce(x, axis, True, use_min)
    values = gather(x, axis, idx)  # the gradient flows to the chosen index only
    if not keepdim:
        values, idx = squeeze(values, axis), squeeze(idx, axis)
    return MaxResult(values, idx)


def max(x, dim=None, keepdim=False):
    """max over everything -> a tensor; max(dim) -> (values, indices), as in PyTorch."""
    return _max_min(x, dim, keepdim, False)


def min(x, dim=None, keepdim=False):
    return _max_min(x, dim, keepdim, True)


class LogSumExp(Function):
    """y = log sum_i e^{x_i} = m + log sum_i e^{x_i - m},   m = max_i x_i  (no overflow)

    dy/dx_i = e^{x_i - y} = softmax(x)_i.   A row that is all -inf gives y = -inf and gradient 0.
    """

    def forward(self, x, axes, keepdim):
        xp = get_array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf (or inf) rows: keep exp() finite
        with _quiet(xp):
            y = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.save_for_backward(x, y)
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return xp.asarray(y if keepdim else y.reshape([n for i, n in enumerate(x.shape)
                                                        if i not in axes]))

    def backward(self, g):
        x, y = self.saved
        xp = get_array_module(x)
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        with _quiet(xp):
            p = xp.exp(x - y)
        return g * xp.where(xp.isnan(p), 0, p)


def logsumexp(x, dim, keepdim=False):
    return LogSumExp.apply(x, normalize_dims(dim, x.ndim, "logsumexp"), keepdim)


class _quiet:
    """Silence NumPy's divide/invalid warnings where inf/nan are the documented result."""

    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if hasattr(self.xp, "errstate"):
            self.state = self.xp.errstate(divide="ignore", invalid="ignore")
            self.state.__enter__()

    def __exit__(self, *exc):
        if hasattr(self.xp, "errstate"):
            self.state.__exit__(*exc)
        return False
