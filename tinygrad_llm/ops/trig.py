"""Trigonometric and hyperbolic functions and erf; each a Function, forward beside backward.

Integer and bool inputs are turned into the default float dtype first (dtypes.to_float), as in
PyTorch. Each Function saves its input, or its output where the derivative is a function of it
(tan' = 1 + tan^2).
"""
import math

from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import to_float
from ..kernels import special


# ----- the Functions ----------------------------------------------------------

class Sin(Function):
    """y = sin x;   dy/dx = cos x."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).sin(x)

    def backward(self, g):
        (x,) = self.saved
        return g * get_array_module(x).cos(x)


class Cos(Function):
    """y = cos x;   dy/dx = -sin x."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).cos(x)

    def backward(self, g):
        (x,) = self.saved
        return -g * get_array_module(x).sin(x)


class Tan(Function):
    """y = tan x;   dy/dx = 1 + tan^2 x = 1 + y^2."""

    def forward(self, x):
        y = get_array_module(x).tan(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * (1 + y * y)


class Asin(Function):
    """y = arcsin x;   dy/dx = 1 / sqrt(1 - x^2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).arcsin(x)

    def backward(self, g):
        (x,) = self.saved
        return g / get_array_module(x).sqrt(1 - x * x)


class Acos(Function):
    """y = arccos x;   dy/dx = -1 / sqrt(1 - x^2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).arccos(x)

    def backward(self, g):
        (x,) = self.saved
        return -g / get_array_module(x).sqrt(1 - x * x)


class Atan(Function):
    """y = arctan x;   dy/dx = 1 / (1 + x^2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).arctan(x)

    def backward(self, g):
        (x,) = self.saved
        return g / (1 + x * x)


class Sinh(Function):
    """y = sinh x;   dy/dx = cosh x."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).sinh(x)

    def backward(self, g):
        (x,) = self.saved
        return g * get_array_module(x).cosh(x)


class Cosh(Function):
    """y = cosh x;   dy/dx = sinh x."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).cosh(x)

    def backward(self, g):
        (x,) = self.saved
        return g * get_array_module(x).sinh(x)


class Asinh(Function):
    """y = arsinh x = ln(x + sqrt(x^2 + 1));   dy/dx = 1 / sqrt(x^2 + 1)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).arcsinh(x)

    def backward(self, g):
        (x,) = self.saved
        return g / get_array_module(x).sqrt(x * x + 1)


class Atanh(Function):
    """y = artanh x = ln((1 + x) / (1 - x)) / 2;   dy/dx = 1 / (1 - x^2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).arctanh(x)

    def backward(self, g):
        (x,) = self.saved
        return g / (1 - x * x)


class Erf(Function):
    """y = erf x = 2/sqrt(pi) int_0^x e^(-t^2) dt;   dy/dx = 2/sqrt(pi) e^(-x^2)."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return special.erf(x)                 # NumPy has no erf: kernels/special.py

    def backward(self, g):
        (x,) = self.saved
        return g * (2 / math.sqrt(math.pi)) * get_array_module(x).exp(-x * x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def tan(x):
    return Tan.apply(x)


def asin(x):
    return Asin.apply(x)


def acos(x):
    return Acos.apply(x)


def atan(x):
    return Atan.apply(x)


def sinh(x):
    return Sinh.apply(x)


def cosh(x):
    return Cosh.apply(x)


def asinh(x):
    return Asinh.apply(x)


def atanh(x):
    return Atanh.apply(x)


def erf(x):
    return Erf.apply(x)
