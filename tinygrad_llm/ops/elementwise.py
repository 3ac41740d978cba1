"""Elementwise arithmetic: each op a Function with forward and backward together.

Binary ops broadcast their operands and promote mixed dtypes as PyTorch does; their gradients
are summed back to each input's shape and cast back to its dtype (broadcasting.py explains
both, with the helpers the backward formulas share).

The unary math functions (exp, log, sin, ...) are in unary.py.
"""
import math

from ..autograd import Function, records_graph
from ..backend import get_array_module
from ..dtypes import result_type, to_float
from .array_methods import as_dtype
from .broadcasting import (_as_input_dtypes, _as_promoted, _promote, _quiet, _shape, unbroadcast,
                           zero_where)


# ----- arithmetic ---------------------------------------------------------------------------

class Add(Function):
    """z = a + b;   dz/da = 1,  dz/db = 1."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        a, b = _promote(self, a, b)
        return a + b

    def backward(self, g):
        ga, gb = unbroadcast(g, self.a_shape), unbroadcast(g, self.b_shape)
        return _as_input_dtypes(self, ga, gb)


def add(a, b):
    return Add.apply(a, b)


class Sub(Function):
    """z = a - b;   dz/da = 1,  dz/db = -1."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        a, b = _promote(self, a, b)
        return a - b

    def backward(self, g):
        ga, gb = unbroadcast(g, self.a_shape), unbroadcast(-g, self.b_shape)
        return _as_input_dtypes(self, ga, gb)


def sub(a, b):
    return Sub.apply(a, b)


class Mul(Function):
    """z = a * b;   dz/da = b,  dz/db = a."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        a, b = _promote(self, a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        ga = unbroadcast(g * b, _shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * a, _shape(b)) if self.needs_input_grad[1] else None
        return _as_input_dtypes(self, ga, gb)


def mul(a, b):
    return Mul.apply(a, b)


class Div(Function):
    """z = a / b;   dz/da = 1 / b,  dz/db = -a / b^2 = -z / b."""

    def forward(self, a, b):
        b_input = b
        a, b = _promote(self, a, b)
        if getattr(a, "dtype", None) is not None and a.dtype.kind not in "fc":
            a = to_float(a)          # true division of integers gives the default float dtype
        if getattr(b, "dtype", None) is not None and b.dtype.kind not in "fc":
            b = b.astype(a.dtype) if hasattr(a, "dtype") else to_float(b)
        out = a / b
        self.save_for_backward(b_input, out)
        self.a_shape = _shape(a)
        return out

    def backward(self, g):
        b, out = self.saved
        b = _as_promoted(self, b)
        ga = unbroadcast(g / b, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-g * out / b, _shape(b)) if self.needs_input_grad[1] else None
        return _as_input_dtypes(self, ga, gb)


def div(a, b):
    return Div.apply(a, b)


class Neg(Function):
    """z = -x;   dz/dx = -1."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


def neg(x):
    return Neg.apply(x)


class Pow(Function):
    """z = a ** b.

    dz/da = b * a^(b - 1)                  taken as 0 where b = 0 (a^0 = 1 is constant, also at
                                           a = 0, where the formula would give 0 * inf)
    dz/db = a^b * log(a) = z * log(a)      taken as 0 where a = 0 and b >= 0 (z = 0 or 1 near
                                           there; the formula would give 0 * -inf), as PyTorch
    """

    def forward(self, a, b):
        a_input, b_input = a, b
        a, b = _promote(self, a, b)
        xp = get_array_module(a, b)
        with _quiet(xp):
            out = a ** b
        self.save_for_backward(a_input, b_input, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        a, b = _as_promoted(self, a), _as_promoted(self, b)
        xp = get_array_module(g)
        ga = gb = None
        with _quiet(xp):
            if self.needs_input_grad[0]:
                da = zero_where(b == 0, b * a ** (b - 1))
                ga = unbroadcast(as_dtype(g * da, g.dtype), _shape(a))
            if self.needs_input_grad[1]:
                log_a = xp.log(a) if hasattr(a, "dtype") else _log_of_number(a)
                db = zero_where((a == 0) & (b >= 0), out * log_a)
                gb = unbroadcast(as_dtype(g * db, g.dtype), _shape(b))
        return _as_input_dtypes(self, ga, gb)


def _log_of_number(a):
    """ln a for a Python number base, as NumPy gives it (-inf at 0, nan below): a plain float
    works with arrays and Tensors on any device."""
    return math.log(a) if a > 0 else (-math.inf if a == 0 else math.nan)


def pow(a, b):
    return Pow.apply(a, b)


class Cast(Function):
    """y = x converted to another dtype;   dy/dx = 1 (the gradient is cast back)."""

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return as_dtype(g, self.in_dtype)


def cast(x, dtype):
    return Cast.apply(x, dtype)


class Clone(Function):
    """y = a copy of x;   dy/dx = 1."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def clone(x):
    return Clone.apply(x)


class ToDevice(Function):
    """y = x copied to another device;   the gradient is copied back."""

    def forward(self, x, device):
        from ..backend import device_of, to_device
        self.in_device = device_of(x)
        return to_device(x, device)

    def backward(self, g):
        if records_graph(g):
            return to_device(g, self.in_device)          # this op again, in the other direction
        from ..backend import to_device as copy_to
        return copy_to(g, self.in_device)


def to_device(x, device):
    return ToDevice.apply(x, device)


# ----- comparison-based ops: the kink conventions are documented and tested -----------------

class Maximum(Function):
    """z = max(a, b) elementwise.

    dz/da = 1 where a > b, dz/db = 1 where b > a; at ties each side gets 1/2 (PyTorch's rule).
    """

    def forward(self, a, b):
        self.save_for_backward(a, b)
        a, b = _promote(self, a, b)
        return get_array_module(a, b).maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        a, b = _as_promoted(self, a), _as_promoted(self, b)
        share_a = (a > b) + 0.5 * (a == b)
        ga = unbroadcast(g * share_a, _shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * (1 - share_a), _shape(b)) if self.needs_input_grad[1] else None
        return _as_input_dtypes(self, ga, gb)


def maximum(a, b):
    return Maximum.apply(a, b)


class Minimum(Function):
    """z = min(a, b) elementwise; the gradient rule mirrors Maximum (ties split 1/2 : 1/2)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        a, b = _promote(self, a, b)
        return get_array_module(a, b).minimum(a, b)

    def backward(self, g):
        a, b = self.saved
        a, b = _as_promoted(self, a), _as_promoted(self, b)
        share_a = (a < b) + 0.5 * (a == b)
        ga = unbroadcast(g * share_a, _shape(a)) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * (1 - share_a), _shape(b)) if self.needs_input_grad[1] else None
        return _as_input_dtypes(self, ga, gb)


def minimum(a, b):
    return Minimum.apply(a, b)


class Clamp(Function):
    """y = min(max(x, lo), hi);   lo and hi may be numbers or tensors that broadcast with x.

    dy/dx = 1 where lo <= x <= hi (the bounds included, as in PyTorch), else 0;
    dy/dlo = 1 where x < lo,   dy/dhi = 1 where x > hi   (tensor bounds, as in PyTorch; where
    lo > hi, y = hi and PyTorch's rules still give lo a gradient where x < lo).
    """

    def forward(self, x, lo, hi):
        self.save_for_backward(x, lo, hi)
        out = get_array_module(x).clip(x, lo, hi)
        if hasattr(lo, "dtype") or hasattr(hi, "dtype") or x.dtype.kind != "f":
            # tensor bounds, or float bounds of an integer tensor: PyTorch's result dtype
            out = as_dtype(out, result_type(*[v for v in (x, lo, hi) if v is not None]))
        return out

    def backward(self, g):
        x, lo, hi = self.saved
        inside = True
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        need_x, need_lo, need_hi = self.needs_input_grad
        gx = _like(unbroadcast(g * inside, x.shape), x) if need_x else None
        g_lo = _like(unbroadcast(g * (x < lo), lo.shape), lo) if need_lo else None
        g_hi = _like(unbroadcast(g * (x > hi), hi.shape), hi) if need_hi else None
        return gx, g_lo, g_hi


def _like(grad, x):
    """The gradient in x's dtype (a tensor bound may have promoted the output)."""
    return grad if grad.dtype == x.dtype else as_dtype(grad, x.dtype)


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(x, min, max)


class Where(Function):
    """z = cond ? a : b;   dz/da = cond,  dz/db = not cond.

    Note (as in PyTorch): the unselected branch still gets gradient 0 * its local derivative,
    so where(x > 0, log(x), 0) has a NaN gradient at x = 0 (0 * inf). Mask inputs, not outputs.
    """

    def forward(self, cond, a, b):
        self.save_for_backward(cond)
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        a, b = _promote(self, a, b)
        return get_array_module(cond, a, b).where(cond, a, b)

    def backward(self, g):
        (cond,) = self.saved
        zero = g.dtype.type(0)
        ga = gb = None
        if self.needs_input_grad[1]:
            ga = unbroadcast(get_array_module(g).where(cond, g, zero), self.a_shape)
        if self.needs_input_grad[2]:
            gb = unbroadcast(get_array_module(g).where(cond, zero, g), self.b_shape)
        return (None,) + _as_input_dtypes(self, ga, gb)


def where(cond, a, b):
    from ..tensor import Tensor
    c = cond.data if isinstance(cond, Tensor) else cond
    if getattr(c, "dtype", None) is None or c.dtype.kind != "b":
        raise TypeError(f"where: condition must be a boolean tensor, got "
                        f"{getattr(c, 'dtype', type(c).__name__)}")
    return Where.apply(cond, a, b)


def masked_fill(x, mask, value):
    """y = value where mask else x (mask broadcasts to x); dy/dx = not mask."""
    from ..tensor import Tensor
    m = mask.data if isinstance(mask, Tensor) else mask
    if getattr(m, "dtype", None) is None or m.dtype.kind != "b":
        raise TypeError(f"masked_fill: mask must be a boolean tensor, got "
                        f"{getattr(m, 'dtype', type(m).__name__)}")
    xp = get_array_module(x.data)
    fill = xp.asarray(value, dtype=x.dtype)
    out = Where.apply(mask, fill, x)
    if out.shape != x.shape:
        raise ValueError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast to "
                         f"the input shape {tuple(x.shape)} without enlarging it")
    return out



class Dropout(Function):
    """y = x * keep / (1 - p)   (keep ~ Bernoulli(1 - p));   dx = dy * keep / (1 - p)."""

    def forward(self, x, multiplier):
        self.multiplier = multiplier                                  # keep / (1 - p)
        return x * multiplier

    def backward(self, g):
        return g * self.multiplier, None
