"""Unary math: exp, log, powers, rounding; each a Function, forward beside backward.
(Trigonometric and hyperbolic functions and erf are in trig.py.)

Integer and bool inputs are turned into the default float dtype first (dtypes.to_float), as in
PyTorch: ``exp`` of an int64 tensor is float32. Each Function saves whatever makes its
derivative cheapest: exp saves its output (e^x is its own derivative), log its input.

The rounding functions (floor, ceil, round, trunc, sign) are flat almost everywhere: their
derivative is 0 (PyTorch's convention, also at the jumps).
"""
import math

from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import to_float


# ----- exponentials and logarithms ----------------------------------------------------------

class Exp(Function):
    """y = e^x;   dy/dx = e^x = y   (so the output is saved, not the input)."""

    def forward(self, x):
        y = get_array_module(x).exp(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * y


class Log(Function):
    """y = ln x;   dy/dx = 1 / x."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved
        return g / x


class Log2(Function):
    """y = log2 x = ln x / ln 2;   dy/dx = 1 / (x ln 2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).log2(x)

    def backward(self, g):
        (x,) = self.saved
        return g / (x * math.log(2.0))


class Log1p(Function):
    """y = ln(1 + x) (accurate for small x);   dy/dx = 1 / (1 + x)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).log1p(x)

    def backward(self, g):
        (x,) = self.saved
        return g / (1 + x)


class Expm1(Function):
    """y = e^x - 1 (accurate for small x);   dy/dx = e^x = y + 1."""

    def forward(self, x):
        y = get_array_module(x).expm1(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * (y + 1)


# ----- powers and roots ---------------------------------------------------------------------

class Sqrt(Function):
    """y = sqrt(x);   dy/dx = 1 / (2 sqrt(x)) = 1 / (2 y)   (inf at x = 0, as in PyTorch)."""

    def forward(self, x):
        y = get_array_module(x).sqrt(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g / (2 * y)


class Rsqrt(Function):
    """y = 1 / sqrt(x);   dy/dx = -1 / (2 x^(3/2)) = -y^3 / 2."""

    def forward(self, x):
        y = 1 / get_array_module(x).sqrt(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * (-0.5 * y * y * y)


class Reciprocal(Function):
    """y = 1 / x;   dy/dx = -1 / x^2 = -y^2."""

    def forward(self, x):
        y = 1 / to_float(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return -g * y * y


class Abs(Function):
    """y = |x|;   dy/dx = sign(x), with the convention abs'(0) = 0."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).abs(x)

    def backward(self, g):
        (x,) = self.saved
        return g * get_array_module(x).sign(x)


# ----- rounding: flat almost everywhere --------------------------------------------------------

class _Flat(Function):
    """y = f(x) for a piecewise-constant f;   dy/dx = 0."""

    def backward(self, g):
        return get_array_module(g).zeros_like(g)


class Floor(_Flat):
    """y = the largest integer <= x."""

    def forward(self, x):
        return get_array_module(x).floor(x)


class Ceil(_Flat):
    """y = the smallest integer >= x."""

    def forward(self, x):
        return get_array_module(x).ceil(x)


class Round(_Flat):
    """y = x rounded to ``decimals`` places, halves to even (PyTorch's and NumPy's rule)."""

    def forward(self, x, decimals=0):
        return get_array_module(x).round(x, decimals)


class Trunc(_Flat):
    """y = x rounded towards zero."""

    def forward(self, x):
        return get_array_module(x).trunc(x)


class Sign(_Flat):
    """y = -1, 0 or 1."""

    def forward(self, x):
        return get_array_module(x).sign(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def log2(x):
    return Log2.apply(x)


def log1p(x):
    return Log1p.apply(x)


def expm1(x):
    return Expm1.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def rsqrt(x):
    return Rsqrt.apply(x)


def reciprocal(x):
    return Reciprocal.apply(x)


def abs(x):
    return Abs.apply(x)


def floor(x):
    return Floor.apply(x)


def ceil(x):
    return Ceil.apply(x)


def round(x, decimals=0):
    return Round.apply(x, decimals=decimals)


def trunc(x):
    return Trunc.apply(x)


def sign(x):
    return Sign.apply(x)
