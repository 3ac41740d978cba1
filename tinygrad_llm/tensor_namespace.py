"""NumPy's function names over Tensors: the ``xp`` a backward formula sees when it is recorded.

Every op's backward is written once, against ``xp = array_module(g)``::

    def backward(self, g):                       # Tanh: dy/dx = 1 - y^2
        (y,) = self.saved
        return g * (1 - y * y)

    def backward(self, g):                       # Sum over axis: the gradient is broadcast back
        return xp.broadcast_to(xp.reshape(g, kept_shape), self.shape)

For an ordinary backward (create_graph=False) ``g`` is a NumPy or CuPy array and ``xp`` is
NumPy (kernels/fastnp.py) or CuPy. When the backward pass is itself differentiated
(create_graph=True, see backprop.py) ``g`` and the saved values are Tensors, and
``array_module(g)`` is this module: each name below does what NumPy's does, through the
library's differentiable ops, so the same formula records a graph.

Only what backward formulas use is here. Functions that create arrays from nothing (zeros,
ones) make constant CPU tensors unless given ``device=``; prefer ``zeros_like(g)``.
"""
import sys

import numpy as np

from . import backend, ops
from .tensor import Tensor, data_of

# dtypes and NumPy's floating-point error switch are shared with NumPy
float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_
errstate = np.errstate
finfo, iinfo, dtype = np.finfo, np.iinfo, np.dtype
ndarray = Tensor


def _tensor(x, dtype=None, device=None):
    if isinstance(x, Tensor):
        return x if dtype is None else ops.cast(x, dtype)
    return Tensor(np.asarray(x, dtype=dtype), device=device)


asarray = _tensor


def astype(x, dtype, copy=True):
    if not copy and np.dtype(dtype) == x.dtype:
        return x
    return ops.cast(x, dtype)


# ----- elementwise -------------------------------------------------------------------------
exp, log, log1p, expm1, sqrt = ops.exp, ops.log, ops.log1p, ops.expm1, ops.sqrt
sin, cos, tan, sinh, cosh, tanh = ops.sin, ops.cos, ops.tan, ops.sinh, ops.cosh, ops.tanh
abs, absolute, sign, reciprocal = ops.abs, ops.abs, ops.sign, ops.reciprocal
floor, ceil, trunc = ops.floor, ops.ceil, ops.trunc
maximum, minimum = ops.maximum, ops.minimum
isnan, isinf, isfinite = ops.isnan, ops.isinf, ops.isfinite
logical_and, logical_or, logical_not = ops.logical_and, ops.logical_or, ops.logical_not


def where(cond, a, b):
    return ops.where(cond, a, b)


def square(x):
    return x * x


def power(a, b):
    return a ** b


def multiply(a, b):
    return a * b


def divide(a, b):
    return a / b


def negative(x):
    return -x


def add(a, b):
    return a + b


def subtract(a, b):
    return a - b


def clip(x, lo, hi):
    return ops.clamp(x, lo, hi)


# ----- reductions and scans ----------------------------------------------------------------

def sum(x, axis=None, keepdims=False, dtype=None):
    return ops.sum(_tensor(x), axis, keepdims, dtype)


def mean(x, axis=None, keepdims=False, dtype=None):
    return ops.mean(_tensor(x), axis, keepdims, dtype)


def prod(x, axis=None, keepdims=False, dtype=None):
    x = _tensor(x)
    if not isinstance(axis, (tuple, list)):
        return ops.prod(x, axis, keepdims, dtype)
    if dtype is not None:
        x = ops.cast(x, dtype)
    for a in sorted((a % x.ndim for a in axis), reverse=True):   # one axis at a time
        x = ops.prod(x, a, keepdims)
    return x


def cumsum(x, axis=None, dtype=None):
    x = _tensor(x)
    if axis is None:
        x, axis = ops.reshape(x, -1), 0
    return ops.cumsum(x, axis, dtype)


def cumprod(x, axis=None, dtype=None):
    x = _tensor(x)
    if axis is None:
        x, axis = ops.reshape(x, -1), 0
    return ops.cumprod(x, axis, dtype)


# ----- shapes ------------------------------------------------------------------------------

def reshape(x, shape):
    return ops.reshape(_tensor(x), shape)


def transpose(x, axes=None):
    x = _tensor(x)
    return ops.permute(x, tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


def swapaxes(x, a, b):
    return ops.transpose(_tensor(x), a, b)


def moveaxis(x, source, destination):
    x = _tensor(x)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % x.ndim for s in src]
    dst = [d % x.ndim for d in dst]
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return ops.permute(x, tuple(order))


def expand_dims(x, axis):
    x = _tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    for a in sorted(a % ndim for a in axes):
        x = ops.unsqueeze(x, a)
    return x


def squeeze(x, axis=None):
    x = _tensor(x)
    if axis is None or isinstance(axis, int):
        return ops.squeeze(x, axis)
    for a in sorted((a % x.ndim for a in axis), reverse=True):
        x = ops.squeeze(x, a)
    return x


def broadcast_to(x, shape):
    x = _tensor(x)
    shape = tuple(shape)
    if x.ndim < len(shape):
        x = ops.reshape(x, (1,) * (len(shape) - x.ndim) + tuple(x.shape))
    return ops.expand(x, shape)


def flip(x, axis=None):
    x = _tensor(x)
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    return ops.flip(x, *axes)


def roll(x, shift, axis=None):
    return ops.roll(_tensor(x), shift, axis)


def concatenate(xs, axis=0):
    return ops.cat([_tensor(x) for x in xs], axis)


def stack(xs, axis=0):
    return ops.stack([_tensor(x) for x in xs], axis)


def take_along_axis(x, indices, axis):
    return ops.gather(_tensor(x), axis, indices)


# ----- products ----------------------------------------------------------------------------

def matmul(a, b):
    return ops.matmul(_tensor(a), _tensor(b))


def einsum(equation, *operands):
    return ops.einsum(equation, *[_tensor(x) for x in operands])


def outer(a, b):
    return ops.reshape(_tensor(a), (-1, 1)) * ops.reshape(_tensor(b), (1, -1))


# ----- constants ---------------------------------------------------------------------------

def zeros_like(x, dtype=None):
    return Tensor._wrap(_xp(x).zeros_like(data_of(x), dtype=dtype))


def ones_like(x, dtype=None):
    return Tensor._wrap(_xp(x).ones_like(data_of(x), dtype=dtype))


def full_like(x, value, dtype=None):
    return Tensor._wrap(_xp(x).full_like(data_of(x), value, dtype=dtype))


def zeros(shape, dtype=np.float64, device=None):
    return Tensor(np.zeros(shape, dtype=dtype), device=device)


def ones(shape, dtype=np.float64, device=None):
    return Tensor(np.ones(shape, dtype=dtype), device=device)


def _xp(x):
    return backend.get_array_module(data_of(x))


# array_module(x) of a Tensor returns this module (kernels/fastnp.py, backend.py)
Tensor._array_namespace = sys.modules[__name__]
