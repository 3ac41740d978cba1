"""In-place updates: add_, mul_, div_, copy_, fill_, clamp_ and x[index] = value.

They write into the tensor's existing array and bump its version counter, which autograd uses
to refuse a backward pass through values that were changed after being saved (PyTorch's
"modified by an inplace operation" error).

While a graph is being recorded, an in-place update of a tensor that requires grad (or with a
value that requires grad) raises: for a leaf, as in PyTorch ("a leaf Variable that requires grad
is being used in an in-place operation"); for an intermediate result, tinygrad_llm does not
rewrite history the way PyTorch does, so it asks for the out-of-place form instead. Parameter
updates belong inside ``with no_grad():``, which is what the optimizers do.

Devices: ``copy_`` and ``x[index] = value`` copy a value from any device to the tensor's (as
PyTorch's copy_ does); ``add_``, ``mul_`` and ``div_`` take a value on the tensor's device (or
a scalar / 0-d array from anywhere) and raise TypeError naming both devices otherwise.
"""
import numpy as np

from . import autograd, backend
from .tensor import Tensor


def _check_allowed(t, value, name):
    if not autograd.is_grad_enabled():
        return
    value_needs_grad = isinstance(value, Tensor) and value.requires_grad
    if t.requires_grad and t.is_leaf:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being used in "
            f"an in-place operation; wrap parameter updates in `with no_grad():`")
    if t.requires_grad or value_needs_grad:
        raise RuntimeError(
            f"{name}: in-place operations on tensors that are part of an autograd graph are not "
            f"supported; use the out-of-place form (e.g. x = x + y) instead")


def _raw(value, t, name, move=False):
    """The array or scalar inside ``value``, on t's device: moved there when ``move`` (copy_,
    setitem) or when it is 0-d; otherwise a value on another device is a TypeError."""
    if isinstance(value, Tensor):
        value = value.data
    if not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
        return value                                    # Python scalars, lists
    here, there = backend.device_of(t.data), backend.device_of(value)
    if here == there:
        return value
    if move or value.ndim == 0:
        return backend.to_device(value, here)
    raise TypeError(f"{name}: the tensor is on {here} but the value is on {there}; move the "
                    f"value with .to({here!r}) first")


def _bump(t):
    t._version[0] += 1
    return t


def add_(t, other, alpha=1):
    """t += alpha * other"""
    _check_allowed(t, other, "add_")
    o = _raw(other, t, "add_")
    t.data += o if alpha == 1 else alpha * o
    return _bump(t)


def mul_(t, other):
    """t *= other"""
    _check_allowed(t, other, "mul_")
    t.data *= _raw(other, t, "mul_")
    return _bump(t)


def div_(t, other):
    """t /= other"""
    _check_allowed(t, other, "div_")
    t.data /= _raw(other, t, "div_")
    return _bump(t)


def copy_(t, src):
    """t[...] = src (broadcast to t's shape, cast to t's dtype)"""
    _check_allowed(t, src, "copy_")
    t.data[...] = _raw(src, t, "copy_", move=True)
    return _bump(t)


def fill_(t, value):
    """t[...] = value"""
    _check_allowed(t, value, "fill_")
    value = _raw(value, t, "fill_", move=True)
    t.data.fill(value.item() if hasattr(value, "item") else value)   # CuPy fills from scalars
    return _bump(t)


def clamp_(t, lo, hi):
    """t = min(max(t, lo), hi) in place"""
    _check_allowed(t, None, "clamp_")
    t.data.clip(lo, hi, out=t.data)
    return _bump(t)


def setitem_(t, index, value):
    """t[index] = value"""
    from .ops.indexing import _unwrap_index
    from .backend import get_array_module
    _check_allowed(t, value, "__setitem__")
    t.data[_unwrap_index(index, get_array_module(t.data))] = _raw(value, t, "__setitem__",
                                                                  move=True)
    _bump(t)
