"""Reductions: sum, mean, var, amax/amin, max/min with indices, argmax, prod, norm, any/all,
logsumexp.

``dim`` is None (all axes), an int or a tuple of ints, negative allowed; ``keepdim`` keeps the
reduced axes with size 1. Every backward first re-inserts the reduced axes into the incoming
gradient (``_expand_reduced``, ``_kept``) so that it broadcasts against the input.

Ties in amax/amin: the gradient is split evenly among the tied maxima (as torch.amax).
max(dim)/min(dim) return (values, indices) like PyTorch; their gradient goes to the returned
index only (the first maximum).

Every backward is written against ``xp = get_array_module(g)``, so it also runs on Tensors and
records its own graph (create_graph=True, see backprop.py). Backward reads only the input and
the output from ``self.saved``; var declares a twin, because it saves the deviations x - mean.
"""
from collections import namedtuple

from ..autograd import Function, records_graph
from ..backend import get_array_module
from .array_methods import as_dtype, sum_over
from .broadcasting import _quiet


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
    """g broadcast over the reduced axes back to ``in_shape``.

    For arrays: a fresh array (cheaper than np.broadcast_to for the small tensors where per-op
    overhead matters, and a real array that later steps may write to).
    """
    xp = get_array_module(g)
    if records_graph(g):
        return xp.broadcast_to(g, in_shape)
    out = xp.empty(in_shape, dtype=g.dtype)
    out[...] = g
    return out


def _expand_reduced(g, in_shape, axes, keepdim):
    """Reshape a reduced gradient (or output) so that it broadcasts against the input."""
    if keepdim or not axes:
        return g
    return g.reshape(tuple([1 if i in axes else n for i, n in enumerate(in_shape)]))  # Tensor too


def _output_of(ctx, y, axes, keepdim):
    """Forward: ``y`` (computed with keepdims=True) as the op's output, which backward reads
    from ``self.saved``; ``ctx`` remembers y's shape for ``_kept``."""
    ctx.kept_shape, ctx.keepdim = y.shape, keepdim
    if not keepdim:
        y = y.reshape([n for i, n in enumerate(y.shape) if i not in axes])
    return get_array_module(y).asarray(y)


def _kept(a, ctx):
    """Backward: the gradient or output of a reduction with its reduced axes kept (size 1)."""
    return a if ctx.keepdim else a.reshape(ctx.kept_shape)                       # Tensor too


class Sum(Function):
    """y = sum_i x_i over the axes;   dy/dx_i = 1 (the gradient is broadcast back)."""

    def forward(self, x, axes, keepdim):
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return get_array_module(x).asarray(x.sum(axis=axes, keepdims=keepdim))

    def backward(self, g):
        g = _expand_reduced(g, self.in_shape, self.axes, self.keepdim)
        return _broadcast_back(g, self.in_shape)


def sum(x, dim=None, keepdim=False, dtype=None):
    """sum over ``dim``; ``dtype`` casts the input first (as torch). Integer and bool inputs
    sum to int64, as in PyTorch."""
    if dtype is not None:
        x = _cast(x, dtype)
    elif x.dtype.kind in "bui" and x.dtype != "int64":
        x = _cast(x, "int64")
    return Sum.apply(x, normalize_dims(dim, x.ndim, "sum"), keepdim)


def _cast(x, dtype):
    import numpy as np
    from .elementwise import cast
    return cast(x, np.dtype(dtype))


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


def mean(x, dim=None, keepdim=False, dtype=None):
    """mean over ``dim``; ``dtype`` casts the input first. Like torch, an integer or bool
    input needs a float ``dtype`` (there is no integer mean)."""
    if dtype is not None:
        x = _cast(x, dtype)
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either "
                           f"a floating point or complex dtype. Got: {x.dtype} (pass "
                           f"dtype=float32 or call .float() first)")
    return Mean.apply(x, normalize_dims(dim, x.ndim, "mean"), keepdim)


def var_composite(x, axes, keepdim, correction):
    """var from primitive ops (mean, sub, mul, sum, div): the readable twin of Var."""
    from .elementwise import div
    n = 1
    for a in axes:
        n *= x.shape[a]
    d = x - mean(x, axes, keepdim=True)
    with _quiet(get_array_module(x.data)):
        return div(sum(d * d, axes, keepdim), n - correction if n > correction else 0)


class Var(Function):
    """y = sum_i (x_i - mean)^2 / (n - correction)

    dy/dx_i = 2 (x_i - mean) / (n - correction)   (the mean's own dependence on x_i cancels,
    because the deviations sum to zero). The deviations are saved; the second derivative,
    2 (delta_ij - 1/n) / (n - correction), is taken through the twin, var_composite.
    """

    twin = staticmethod(var_composite)

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
        if x.size == 0:
            raise ValueError(f"amax/amin of an empty tensor of shape {x.shape}")
        y = x.min(axis=axes, keepdims=True) if use_min else x.max(axis=axes, keepdims=True)
        y = _output_of(self, y, axes, keepdim)
        self.save_for_backward(x, y)
        self.axes = axes
        return y

    def backward(self, g):
        x, y = self.saved
        hit = x == _kept(y, self)
        return _kept(g, self) * hit / as_dtype(sum_over(hit, self.axes, keepdims=True), g.dtype)


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


class Prod(Function):
    """y = prod_i x_i over the axes

    dy/dx_i = prod_{k != i} x_k, evaluated without dividing by zero:
        no zero among the x:      y / x_i
        exactly one zero, at i:   the product of the other (non-zero) values
        otherwise:                0   (every product of the others still holds a zero)
    """

    def forward(self, x, axes, keepdim):
        xp = get_array_module(x)
        dtype = x.dtype if x.dtype.kind in "fc" else xp.int64   # torch: int products in int64
        y = _output_of(self, xp.asarray(x.prod(axis=axes, keepdims=True, dtype=dtype)), axes,
                       keepdim)
        self.save_for_backward(x, y)
        self.axes = axes
        return y

    def backward(self, g):
        x, y = self.saved
        return _kept(g, self) * _product_of_others(x, _kept(y, self), self.axes)


def _product_of_others(x, y, axes):
    """prod_{k != i} x_k over ``axes``, for every i (y: the product, with the axes kept).

    Arrays: y / x_i, or the zero cases of Prod's docstring. Tensors (create_graph=True): the
    product of the exclusive running products from the left and from the right, made of
    cumprod, so that every derivative is right with any number of zeros (y / x_i would make the
    second derivative 0 where two x are 0, although prod_{k != i, j} x_k is not).
    """
    xp = get_array_module(x)
    if records_graph(x):
        from .scan import exclusive_products
        return exclusive_products(x, axes)
    is_zero = x == 0
    n_zeros = is_zero.sum(axis=axes, keepdims=True)
    others_if_no_zero = y / xp.where(is_zero, 1, x)
    prod_nonzero = xp.where(is_zero, 1, x).prod(axis=axes, keepdims=True)
    return xp.where(is_zero, xp.where(n_zeros == 1, prod_nonzero, 0), others_if_no_zero)


def prod(x, dim=None, keepdim=False, dtype=None):
    """Product over one dim (or all elements with dim=None), PyTorch's signature."""
    if dtype is not None:
        x = _cast(x, dtype)
    if dim is not None and not isinstance(dim, int):
        raise TypeError(f"prod: dim must be an int or None, got {dim!r}")
    return Prod.apply(x, normalize_dims(dim, x.ndim, "prod"), keepdim)


class Norm(Function):
    """y = (sum_i |x_i|^p)^(1/p) over the axes (p > 0; p = inf: max |x_i|)

    dy/dx_i = sign(x_i) |x_i|^(p-1) / y^(p-1)   (p = inf: sign(x_i) where |x_i| = y, split
    among ties);  taken as 0 where y = 0 (the subgradient PyTorch uses at the origin).
    """

    def forward(self, x, p, axes, keepdim):
        xp = get_array_module(x)
        a = xp.abs(x)
        if p == float("inf"):
            y = a.max(axis=axes, keepdims=True)
        elif p == 2:
            y = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            y = ((a ** p).sum(axis=axes, keepdims=True)) ** (1.0 / p)
        self.p, self.axes = p, axes
        y = _output_of(self, y, axes, keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved
        xp = get_array_module(x)
        g, y = _kept(g, self), _kept(y, self)
        safe_y = xp.where(y == 0, 1, y)
        if self.p == float("inf"):
            hit = xp.abs(x) == y
            d = xp.sign(x) * hit / as_dtype(sum_over(hit, self.axes, keepdims=True), x.dtype)
        elif self.p == 2:
            d = x / safe_y
        else:
            d = xp.sign(x) * (xp.abs(x) / safe_y) ** (self.p - 1)
        return g * xp.where(y == 0, 0, d)


def norm(x, p=2.0, dim=None, keepdim=False):
    """The p-norm over ``dim`` (all elements by default), p > 0 or inf."""
    if p == "fro":
        p = 2.0
    if not (isinstance(p, (int, float)) and p > 0):
        raise ValueError(f"norm: p must be a positive number or inf, got {p!r}")
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"norm(): input dtype should be floating point, got {x.dtype}")
    return Norm.apply(x, float(p), normalize_dims(dim, x.ndim, "norm"), keepdim)


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
        y = _output_of(self, y, axes, keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved
        xp = get_array_module(x)
        g, y = _kept(g, self), _kept(y, self)
        with _quiet(xp):
            p = xp.exp(x - y)
        return g * xp.where(xp.isnan(p), 0, p)


def logsumexp(x, dim, keepdim=False):
    return LogSumExp.apply(x, normalize_dims(dim, x.ndim, "logsumexp"), keepdim)
