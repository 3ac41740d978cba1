"""Activation functions: tanh, sigmoid, relu, leaky_relu, gelu (exact and tanh approximation),
silu, softplus, logsigmoid, elu, hardsigmoid, hardswish; normalize.

Each saves whatever makes its derivative cheapest: tanh and sigmoid save their output, because
their derivatives are functions of the output (1 - y^2, y (1 - y)).

Every backward is written against ``xp = get_array_module(g)`` so that it also runs on Tensors
and can be differentiated again (create_graph=True, see backprop.py). GELU (both forms) and
SiLU keep an intermediate (tanh, the normal CDF, the sigmoid) to save work in the first-order
backward; their second derivatives come from their ``twin``, the same formula as primitive ops.
"""
import math

import numpy as np

from ..autograd import Function, records_graph
from ..backend import get_array_module
from ..dtypes import to_float
from ..kernels import gelu as gelu_kernel
from ..kernels import special
from ..kernels.gelu import GELU_CUBIC, SQRT_2_OVER_PI
from .array_methods import as_dtype


class Tanh(Function):
    """y = tanh(x);   dy/dx = 1 - y^2."""

    def forward(self, x):
        y = get_array_module(x).tanh(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * (1 - y * y)


def tanh(x):
    return Tanh.apply(x)


def _stable_sigmoid(x):
    """1 / (1 + e^-x) without overflow: use e^-|x|, which is always <= 1."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_of(z):
    """sigmoid(z) inside a backward formula: on arrays the stable formula; on Tensors the
    Sigmoid op, whose derivative y (1 - y) is right at z = 0 too (the stable formula goes
    through |z|, whose derivative there is 0)."""
    if records_graph(z):
        return Sigmoid.apply(z)
    return _stable_sigmoid(z)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);   dy/dx = y (1 - y).   Finite for inputs of any size."""

    def forward(self, x):
        y = _stable_sigmoid(to_float(x))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return g * y * (1 - y)


def sigmoid(x):
    return Sigmoid.apply(x)


class Relu(Function):
    """y = max(x, 0);   dy/dx = 1 where x > 0, else 0 (relu'(0) = 0, as in PyTorch)."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).maximum(x, 0)

    def backward(self, g):
        (x,) = self.saved
        return g * (x > 0)


def relu(x):
    return Relu.apply(x)


class LeakyRelu(Function):
    """y = x if x > 0 else a x;   dy/dx = 1 if x > 0 else a (the slope a at x = 0)."""

    def forward(self, x, slope):
        self.save_for_backward(x)
        self.slope = slope
        return get_array_module(x).where(x > 0, x, slope * x)

    def backward(self, g):
        (x,) = self.saved
        return get_array_module(g).where(x > 0, g, self.slope * g)


def leaky_relu(x, negative_slope=0.01):
    return LeakyRelu.apply(x, negative_slope)


INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu_tanh_composite(x):
    """GELU's tanh form from primitive ops: the readable twin of GeluTanh."""
    return 0.5 * x * (1 + tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)))


class GeluTanh(Function):
    """GELU, tanh approximation (GPT-2's):

        u = sqrt(2/pi) (x + 0.044715 x^3),   t = tanh(u),   y = 0.5 x (1 + t)
        dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

    Kernel: kernels/gelu.py (one pass over memory per direction); only x is saved, and the
    backward recomputes t (cheaper than keeping a second array of x's size). Second
    derivative: through the twin, gelu_tanh_composite.
    """

    twin = staticmethod(gelu_tanh_composite)

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return gelu_values(x, "tanh")

    def backward(self, g):
        (x,) = self.saved
        return gelu_input_grad(x, g, "tanh")


def gelu_values(x, approximate):
    """GELU of the float array x (approximate: 'tanh' or 'none'), for ops that recompute it."""
    if approximate == "tanh":
        if x.dtype in (np.float32, np.float64):      # the kernel's dtypes; else its reference
            return gelu_kernel.gelu_tanh_forward(x)
        return gelu_kernel.gelu_tanh_forward_ref(x)
    return x * (0.5 * (1 + special.erf(x * INV_SQRT_2)))


def gelu_input_grad(x, g, approximate, in_place=False):
    """g * gelu'(x) for float arrays (the formulas of GeluTanh and GeluExact); with
    ``in_place`` written into g (a C-contiguous array that nothing else needs)."""
    if approximate == "tanh":
        if x.dtype in (np.float32, np.float64):
            return gelu_kernel.gelu_tanh_backward(x, g, out=g if in_place else None)
        return gelu_kernel.gelu_tanh_backward_ref(x, g)
    cdf = 0.5 * (1 + special.erf(x * INV_SQRT_2))
    pdf = INV_SQRT_2PI * get_array_module(x).exp(-0.5 * x * x)
    if in_place:
        g *= cdf + x * pdf
        return g
    return g * (cdf + x * pdf)


def gelu_exact_composite(x):
    """Exact GELU from primitive ops (erf, mul, add): the readable twin of GeluExact."""
    from .trig import erf
    return x * (0.5 * (1 + erf(x * INV_SQRT_2)))


class GeluExact(Function):
    """GELU, exact:   y = x Phi(x),   Phi(x) = (1 + erf(x / sqrt 2)) / 2   (the normal CDF)

        dy/dx = Phi(x) + x phi(x),   phi(x) = e^(-x^2 / 2) / sqrt(2 pi)   (the normal density)
        d2y/dx2 = 2 phi(x) - x^2 phi(x)   (taken through the twin, gelu_exact_composite)
    """

    twin = staticmethod(gelu_exact_composite)

    def forward(self, x):
        x = to_float(x)
        cdf = 0.5 * (1 + special.erf(x * INV_SQRT_2))  # NumPy has no erf: kernels/special.py
        self.save_for_backward(x, cdf)
        return x * cdf

    def backward(self, g):
        x, cdf = self.saved
        pdf = INV_SQRT_2PI * get_array_module(x).exp(-0.5 * x * x)
        return g * (cdf + x * pdf)


def gelu(x, approximate="none"):
    """GELU with PyTorch's argument: approximate='none' (exact, erf) or 'tanh'."""
    if approximate == "tanh":
        return GeluTanh.apply(x)
    if approximate == "none":
        return GeluExact.apply(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu_composite(x):
    """x sigmoid(x) from primitive ops: the readable twin of Silu."""
    return x * sigmoid(x)


class Silu(Function):
    """y = x sigmoid(x);   dy/dx = s + x s (1 - s),  s = sigmoid(x)  (s is saved; the second
    derivative is taken through the twin, silu_composite)."""

    twin = staticmethod(silu_composite)

    def forward(self, x):
        x = to_float(x)
        s = _stable_sigmoid(x)
        self.save_for_backward(x, s)
        return x * s

    def backward(self, g):
        x, s = self.saved
        return g * (s + x * s * (1 - s))


def silu(x):
    return Silu.apply(x)


class Softplus(Function):
    """y = (1 / beta) log(1 + e^(beta x)), computed as (max(z, 0) + log1p(e^-|z|)) / beta with
    z = beta x; y = x where z > threshold (PyTorch's linear region).

    dy/dx = sigmoid(beta x), and 1 in the linear region.
    """

    def forward(self, x, beta, threshold):
        x = to_float(x)
        xp = get_array_module(x)
        z = x * beta if beta != 1 else x
        self.save_for_backward(x)
        self.beta, self.threshold = beta, threshold
        y = xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))
        if beta != 1:
            y = y / beta
        return xp.where(z > threshold, x, y).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved
        z = x * self.beta if self.beta != 1 else x
        return get_array_module(g).where(z > self.threshold, g, g * _sigmoid_of(z))


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(x, beta, threshold)


class LogSigmoid(Function):
    """y = log sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(e^-|x|)   (no overflow)

    dy/dx = 1 - sigmoid(x) = sigmoid(-x).
    """

    def forward(self, x):
        x = to_float(x)
        xp = get_array_module(x)
        self.save_for_backward(x)
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        (x,) = self.saved
        return g * _sigmoid_of(-x)


def logsigmoid(x):
    return LogSigmoid.apply(x)


class Elu(Function):
    """y = x if x > 0 else alpha (e^x - 1);   dy/dx = 1 if x > 0 else alpha e^x = y + alpha."""

    def forward(self, x, alpha):
        x = to_float(x)
        xp = get_array_module(x)
        y = xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))
        self.alpha = alpha
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved
        return get_array_module(g).where(x > 0, g, g * (y + self.alpha))


def elu(x, alpha=1.0):
    return Elu.apply(x, alpha)


class Hardsigmoid(Function):
    """y = clamp(x / 6 + 1/2, 0, 1);   dy/dx = 1/6 for -3 < x < 3, else 0."""

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return get_array_module(x).clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved
        return g * ((x > -3) & (x < 3)) / 6


def hardsigmoid(x):
    return Hardsigmoid.apply(x)


class Hardswish(Function):
    """y = x hardsigmoid(x) = x clamp(x + 3, 0, 6) / 6

    dy/dx = 0 for x <= -3,  x / 3 + 1/2 for -3 < x < 3,  1 for x >= 3   (PyTorch's sides).
    """

    def forward(self, x):
        x = to_float(x)
        self.save_for_backward(x)
        return x * get_array_module(x).clip(x + 3, 0, 6) / 6

    def backward(self, g):
        (x,) = self.saved
        xp = get_array_module(g)
        slope = xp.where(x <= -3, 0, xp.where(x < 3, x / 3 + 0.5, 1))
        return as_dtype(g * slope, g.dtype)


def hardswish(x):
    return Hardswish.apply(x)


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """F.normalize: x / max(||x||_p, eps) along ``dim`` (composed of norm, clamp and div)."""
    from .elementwise import clamp, div
    from .reduce import norm
    n = norm(x, p, dim, keepdim=True)
    return div(x, clamp(n, min=eps))
