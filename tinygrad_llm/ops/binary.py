"""Binary elementwise functions beyond arithmetic: remainder, fmod, copysign, divide with a
rounding_mode (floor_divide).

    remainder(a, b) = a - floor(a / b) * b   (the sign of b, like Python's %, as torch)
    fmod(a, b)      = a - trunc(a / b) * b   (the sign of a, like C's fmod)
    copysign(a, b)  = |a| with the sign of b

Derivatives (a / b is piecewise constant inside floor/trunc, so it contributes nothing):

    d remainder/da = 1,   d remainder/db = -floor(a / b)
    d fmod/da      = 1,   d fmod/db      = -trunc(a / b)
    d copysign/da  = copysign(a, b) / a  (= +-1), taken as 0 at a = 0 (as torch);   d/db = 0

Broadcasting and dtype promotion as in broadcasting.py; a Python number may be either operand.
"""
from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import promote, to_float
from .broadcasting import _as_input_dtypes, _as_promoted, _promote, _quiet, _shape, unbroadcast


def _check_integer_divisor(op, a, b):
    """Integer division by zero: torch raises, NumPy would warn and return 0."""
    xp = get_array_module(a, b)
    dtype = xp.result_type(a, b)
    if dtype.kind in "iub" and bool(xp.any(xp.asarray(b) == 0)):
        raise RuntimeError(f"{op}: ZeroDivisionError (integer division by zero)")


class _Modulo(Function):
    """z = a - round(a / b) * b,  round = floor (remainder) or trunc (fmod);
    dz/da = 1,  dz/db = -round(a / b)."""

    name = ufunc = rounding = None

    def forward(self, a, b):
        self.a_shape, self.b_shape = _shape(a), _shape(b)
        self.save_for_backward(a, b)
        a, b = _promote(self, a, b)
        _check_integer_divisor(self.name, a, b)
        xp = get_array_module(a, b)
        with _quiet(xp):
            return xp.asarray(getattr(xp, self.ufunc)(a, b))

    def backward(self, g):
        ga = unbroadcast(g, self.a_shape)
        gb = None
        if self.needs_input_grad[1]:
            a, b = self.saved
            a, b = _as_promoted(self, a), _as_promoted(self, b)
            xp = get_array_module(g)
            with _quiet(xp):
                quotient = getattr(xp, self.rounding)(a / b)
            gb = unbroadcast(-g * quotient, self.b_shape)
        return _as_input_dtypes(self, ga, gb)


class Remainder(_Modulo):
    """remainder(a, b) = a - floor(a / b) b;   d/da = 1,  d/db = -floor(a / b)."""

    name, ufunc, rounding = "remainder", "remainder", "floor"


class Fmod(_Modulo):
    """fmod(a, b) = a - trunc(a / b) b;   d/da = 1,  d/db = -trunc(a / b)."""

    name, ufunc, rounding = "fmod", "fmod", "trunc"


def remainder(a, b):
    return Remainder.apply(a, b)


def fmod(a, b):
    return Fmod.apply(a, b)


class Copysign(Function):
    """z = |a| sign(b);   dz/da = z / a (0 at a = 0),   dz/db = 0."""

    def forward(self, a, b):
        self.b_shape, a_input = _shape(b), a
        a, b = _promote(self, a, b)
        if getattr(a, "dtype", None) is not None and a.dtype.kind != "f":
            a = to_float(a)                  # copysign always gives floats (default dtype)
        xp = get_array_module(a, b)
        z = xp.asarray(xp.copysign(a, b))
        self.save_for_backward(a_input, z)
        return z

    def backward(self, g):
        a, z = self.saved
        a = _as_promoted(self, a)
        xp = get_array_module(g)
        ratio = xp.where(a == 0, 0, z / xp.where(a == 0, 1, a))      # +-1, or 0 at a = 0
        ga = unbroadcast(g * ratio, _shape(a))
        gb = unbroadcast(xp.zeros_like(g), self.b_shape) if self.needs_input_grad[1] else None
        return _as_input_dtypes(self, ga, gb)


def copysign(a, b):
    return Copysign.apply(a, b)


def divide(a, b, rounding_mode=None):
    """torch.div with ``rounding_mode``: None (true division), 'trunc' or 'floor'. The rounded
    quotients are flat almost everywhere, so their gradient is 0 (as floor and trunc)."""
    from .elementwise import div
    from .unary import floor, trunc
    if rounding_mode is None:
        return div(a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found {rounding_mode!r}")
    raw_a, raw_b = getattr(a, "data", a), getattr(b, "data", b)
    xp = get_array_module(raw_a, raw_b)
    if xp.result_type(raw_a, raw_b).kind in "iu":     # integers: exact, no float round trip
        from ..tensor import Tensor
        raw_a, raw_b = promote(raw_a, raw_b)
        _check_integer_divisor("div", raw_a, raw_b)
        q = xp.floor_divide(raw_a, raw_b)
        if rounding_mode == "trunc":   # floor rounds down; trunc rounds negative quotients up
            q = q + ((q < 0) & (q * raw_b != raw_a))
        return Tensor._wrap(xp.asarray(q))
    q = div(a, b)
    return floor(q) if rounding_mode == "floor" else trunc(q)


def floor_divide(a, b):
    return divide(a, b, rounding_mode="floor")
