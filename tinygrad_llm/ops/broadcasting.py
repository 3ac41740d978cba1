"""What the binary ops' backward formulas share: broadcasting, dtype promotion, and the few
places where a fast array idiom and the recorded Tensor formula (create_graph=True) differ.

Broadcasting: a binary op on shapes (2, 3) and (3,) computes on (2, 3). Its backward must return
a gradient shaped like each *input*, so the gradient is summed over the axes that broadcasting
added or stretched: that sum is the adjoint of broadcasting (``unbroadcast``).

Mixed dtypes follow PyTorch's promotion rules (dtypes.py): ``int64 + float32`` is float32, and
Python scalars are weak constants (``x * 2`` keeps x's dtype) that get no gradient. When the
inputs were promoted, each gradient is cast back to its input's dtype (``_as_input_dtypes``).
An op saves its inputs as given, not their promoted copies, and promotes them again in
backward (``_as_promoted``): under create_graph the engine swaps each saved input for its
Tensor (backprop.py), which it could not do for a copy.
"""
import numpy as np

from ..backend import get_array_module
from ..dtypes import promote, result_type
from .array_methods import as_dtype, sum_over


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``grad.shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:  # leading axes that broadcasting prepended
        grad = sum_over(grad, tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:  # size-1 axes that broadcasting stretched
        grad = sum_over(grad, stretched, keepdims=True)
    return get_array_module(grad).asarray(grad)  # a 0-d sum is a scalar; keep an array


def zero_where(cond, x):
    """xp.where(cond, 0, x); ``cond`` may be a plain bool (an operand was a Python number)."""
    xp = get_array_module(x)
    if isinstance(cond, bool):
        return xp.zeros_like(x) if cond else x
    return xp.where(cond, 0, x)


def _shape(x):
    return getattr(x, "shape", ())


def _promote(fn, a, b):
    """(a, b) with the arrays cast to PyTorch's result dtype (dtypes.promote). When a cast
    happened, fn.dtypes keeps the inputs' dtypes, so that backward can cast the gradients back,
    and fn.common the dtype computed in; the common cases (one dtype, or a float array and a
    Python number) return at once."""
    da, db = getattr(a, "dtype", None), getattr(b, "dtype", None)
    fn.dtypes = None
    if da is not None and db is not None:
        if da is db or da == db:
            return a, b
        fn.dtypes, fn.common = (da, db), result_type(a, b)
    elif (da if da is not None else db).kind == "f":
        return a, b
    return promote(a, b)


def _as_promoted(fn, x):
    """A saved input as forward computed with it: cast to fn.common again after a promotion of
    mixed dtypes. (Ops save the input itself, not the promoted copy: under create_graph the
    engine swaps a saved input for its Tensor, see backprop.py.)"""
    if fn.dtypes is None or isinstance(x, np.generic) or x.dtype == fn.common:
        return x
    return as_dtype(x, fn.common)


def _as_input_dtypes(fn, ga, gb):
    """The gradients cast back to their inputs' dtypes after a promotion."""
    if fn.dtypes is None:
        return ga, gb
    da, db = fn.dtypes
    if ga is not None and ga.dtype != da:
        ga = as_dtype(ga, da)
    if gb is not None and gb.dtype != db:
        gb = as_dtype(gb, db)
    return ga, gb


class _quiet:
    """Silence NumPy's warnings for 0 ** negative and log(0) (inf/-inf are the right values)."""

    def __init__(self, xp):
        self.np = xp if hasattr(xp, "errstate") else None

    def __enter__(self):
        if self.np is not None:
            self.state = self.np.errstate(divide="ignore", invalid="ignore")
            self.state.__enter__()

    def __exit__(self, *exc):
        if self.np is not None:
            self.state.__exit__(*exc)
        return False
