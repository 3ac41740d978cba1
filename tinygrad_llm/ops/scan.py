"""Scans (running reductions along one axis): cumsum, cumprod, cummax, cummin.

Along the axis of length n, with upstream gradient g:

    cumsum   y_j = sum_{i<=j} x_i        dx_i = sum_{j>=i} g_j         (a reversed cumsum)
    cumprod  y_j = prod_{i<=j} x_i       dx_i = sum_{j>=i} g_j prod_{k<=j, k!=i} x_k
    cummax   y_j = max_{i<=j} x_i        (values, indices); the gradient of y_j goes to x at
                                          the returned index (as in PyTorch)

cumprod's derivative is usually written sum_{j>=i} g_j y_j / x_i, which divides by zero when
an x_i is 0. The backward here stays exact with zeros (see CumProd), and so does its own
derivative: the backward formulas are written against ``xp = get_array_module(g)`` and run on
Tensors when the backward pass is recorded (create_graph=True, see backprop.py).
"""
from collections import namedtuple

import numpy as np

from ..autograd import Function, records_graph
from ..backend import get_array_module, to_numpy
from .array_methods import as_dtype, cumsum as _cumsum
from .reduce import normalize_dims


def _axis(x, dim, op):
    (axis,) = normalize_dims(dim, max(x.ndim, 1), op) if x.ndim else (0,)
    return axis


def _reverse_cumsum(a, axis):
    """r_i = sum_{j>=i} a_j along ``axis``: cumsum of the flipped array, flipped back."""
    xp = get_array_module(a)
    return xp.flip(_cumsum(xp.flip(a, axis), axis), axis)


def _scan_dtype(x, dtype):
    """PyTorch's result dtype of cumsum/cumprod: ``dtype`` if given, int64 for bool/int input."""
    if dtype is not None:
        return dtype
    return x.dtype if x.dtype.kind in "fc" else get_array_module(x).int64


class CumSum(Function):
    """y_j = sum_{i<=j} x_i;   dx_i = sum_{j>=i} g_j (the reversed cumulative sum of g)."""

    def forward(self, x, axis, dtype):
        self.axis, self.in_dtype = axis, x.dtype
        xp = get_array_module(x)
        return xp.asarray(x.cumsum(axis=axis, dtype=_scan_dtype(x, dtype)))

    def backward(self, g):
        return as_dtype(_reverse_cumsum(g, self.axis), self.in_dtype)


def cumsum(x, dim, dtype=None):
    if x.ndim == 0:
        from .shape import reshape
        return reshape(cumsum(reshape(x, 1), 0, dtype), ())
    return CumSum.apply(x, _axis(x, dim, "cumsum"), dtype)


class CumProd(Function):
    """y_j = prod_{i<=j} x_i

    dx_i = sum_{j>=i} g_j prod_{k<=j, k!=i} x_k, evaluated without dividing by zero. Let z be
    the position of the first zero along the axis:

        i < z:   dx_i = (sum_{j>=i} g_j y_j) / x_i     (y_j = 0 for j >= z: those terms vanish)
        i = z:   dx_z = sum_{j>=z} g_j y'_j,  y' = cumprod of x with x_z replaced by 1
        i > z:   dx_i = 0                              (every product still holds x_z = 0)

    With no zero the first line holds everywhere. The line i > z is 0 in value, but not in its
    derivative with respect to x_z: recorded on Tensors, it is x_z * (the same gradient for x
    with x_z replaced by 1), so that the second derivative is exact too.
    """

    def forward(self, x, axis, dtype):
        xp = get_array_module(x)
        y = xp.asarray(x.cumprod(axis=axis, dtype=_scan_dtype(x, dtype)))
        self.axis = axis
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved
        return as_dtype(_cumprod_grad(x, y, g, self.axis), x.dtype)


def _cumprod_grad(x, y, g, axis):
    """dx of CumProd (see its docstring); y = cumprod(x)."""
    xp = get_array_module(g)
    is_zero = _as_array(x == 0)
    zeros_so_far = is_zero.cumsum(axis=axis)
    before_first_zero = zeros_so_far == 0
    first_zero = is_zero & (zeros_so_far == 1)
    # i < z: the usual formula, with x_i = 1 where it is not used (no division by zero)
    safe_x = xp.where(before_first_zero, x, 1)
    dx = xp.where(before_first_zero, _reverse_cumsum(g * y, axis) / safe_x, 0)
    if not first_zero.any():
        return dx
    # i = z: the products skip x_z
    x_skip = xp.where(first_zero, 1, x)
    y_skip = xp.cumprod(x_skip, axis=axis)
    at_zero = _reverse_cumsum(g * y_skip, axis)
    if not records_graph(g):
        return xp.where(first_zero, at_zero, dx)
    # i > z: x_z times the gradient for x_skip (0 in value, x_z's derivative kept)
    x_z = xp.sum(xp.where(first_zero, x, 0), axis=axis, keepdims=True)
    after = x_z * _cumprod_grad(x_skip, y_skip, g, axis)
    return xp.where(first_zero, at_zero, xp.where(before_first_zero, dx, after))


def _as_array(mask):
    """A comparison's result as a raw bool array (a Tensor's data when recorded)."""
    return mask.data if records_graph(mask) else mask


def cumprod(x, dim, dtype=None):
    if x.ndim == 0:
        from .shape import reshape
        return reshape(cumprod(reshape(x, 1), 0, dtype), ())
    return CumProd.apply(x, _axis(x, dim, "cumprod"), dtype)


def exclusive_products(x, axes):
    """prod_{k != i} x_k over ``axes`` for every i, without division (exact with any zeros):
    left_i * right_i, the exclusive running products from each side, the axes flattened into
    one last axis. Prod's backward uses it when recorded (its derivatives are cumprod's)."""
    xp = get_array_module(x)
    last = tuple(range(x.ndim - len(axes), x.ndim))
    moved = xp.moveaxis(x, axes, last)
    flat = xp.reshape(moved, tuple(moved.shape[:x.ndim - len(axes)]) + (-1,))
    left = _exclusive_cumprod(flat)
    right = xp.flip(_exclusive_cumprod(xp.flip(flat, axis=-1)), axis=-1)
    return xp.moveaxis(xp.reshape(left * right, moved.shape), last, axes)


def _exclusive_cumprod(a):
    """e_i = prod_{k<i} a_k along the last axis (e_0 = 1): the cumprod of [1, a_0, a_1, ...]."""
    xp = get_array_module(a)
    return xp.cumprod(xp.concatenate([xp.ones_like(a[..., :1]), a[..., :-1]], axis=-1), axis=-1)


CumResult = namedtuple("CumResult", ["values", "indices"])


def _running_arg(data, axis, use_min):
    """Index of the running max (min) along ``axis``; a later tie wins, as in PyTorch.

    The running maximum m_j = max_{i<=j} x_i; the index for j is the last i <= j with
    x_i == m_j, i.e. the running maximum of (i where x_i == m_i, else -1). A NaN, once seen,
    stays the running value (as in PyTorch). Computed with NumPy on the host (CuPy has no
    ufunc.accumulate for these ufuncs); indices carry no gradient.
    """
    xp = get_array_module(data)
    x = to_numpy(data)
    running = (np.fmin if use_min else np.fmax).accumulate(x, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = np.arange(x.shape[axis]).reshape(shape)
    hit = x == running
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        seen_nan = np.logical_or.accumulate(nan, axis=axis)
        hit = np.where(seen_nan, nan, hit)
    marks = np.where(hit, positions, -1)
    return xp.asarray(np.maximum.accumulate(marks, axis=axis).astype(np.int64))


def _cum_extreme(x, dim, use_min):
    from ..tensor import Tensor
    from .indexing import gather
    from .shape import reshape
    if x.ndim == 0:
        values, indices = _cum_extreme(reshape(x, 1), 0, use_min)
        return CumResult(reshape(values, ()), reshape(indices, ()))
    axis = _axis(x, dim, "cummin" if use_min else "cummax")
    if x.shape[axis] == 0:
        return CumResult(x, Tensor._wrap(get_array_module(x.data).zeros(x.shape, dtype="int64")))
    indices = Tensor._wrap(_running_arg(x.data, axis, use_min))
    return CumResult(gather(x, axis, indices), indices)


def cummax(x, dim):
    """(values, indices): the running maximum along ``dim`` and where it was found."""
    return _cum_extreme(x, dim, False)


def cummin(x, dim):
    """(values, indices): the running minimum along ``dim`` and where it was found."""
    return _cum_extreme(x, dim, True)
