"""softmax and log_softmax: the composite twins, then the Functions that run the kernels.

    softmax(x)_i     = e^{x_i - m} / sum_j e^{x_j - m},   m = max_j x_j
    log_softmax(x)_i = x_i - logsumexp(x)

Subtracting the max changes nothing mathematically (it cancels in the ratio) but keeps every
exponent <= 0, so nothing overflows. Read the twins first: they are the formulas made of
primitive ops, and autograd differentiates them through exp, sum, div and logsumexp. The
Functions compute the same with one pass over memory per direction and must agree with the
twins in value and gradient (tests/test_op_softmax.py). When the backward pass is itself
differentiated (create_graph=True), the Functions' gradients are taken through their twins
(the ``twin`` attribute, see backprop.py), so every second derivative is that of the formula.

Kernels: kernels/softmax.py (NumPy reference, numba CPU, numba CUDA), on the last axis.
"""
from ..autograd import Function
from ..kernels import softmax as kernel
from ..kernels.fastnp import array_module
from .elementwise import div, sub, where
from .reduce import amax, logsumexp, normalize_dims, sum
from .shape import reshape, transpose
from .unary import exp


# ----- the composite twins ------------------------------------------------------------------

def softmax_composite(x, dim):
    # the max is detached: softmax does not depend on it, so its gradient would be 0 anyway
    shifted = sub(x, amax(x, dim, keepdim=True).detach())
    e = exp(shifted)
    return div(e, sum(e, dim, keepdim=True))


def log_softmax_composite(x, dim):
    return sub(x, logsumexp(x, dim, keepdim=True))


def masked_softmax_composite(x, dim):
    """softmax_composite, but a row of -inf only (every key masked) gives zeros, not NaN, as
    the kernel does: the row's max is taken as 0 and its zero sum as 1 (constants)."""
    xp = array_module(x.data)
    m = xp.max(x.data, axis=dim, keepdims=True)
    e = exp(sub(x, xp.where(xp.isfinite(m), m, 0)))
    total = sum(e, dim, keepdim=True)
    return div(e, where(total.data == 0, xp.ones((), dtype=total.dtype), total))


def _softmax_twin(x, impl="auto"):
    return masked_softmax_composite(x, -1)


def _log_softmax_twin(x, impl="auto"):
    return log_softmax_composite(x, -1)


# ----- the Functions (last axis) --------------------------------------------------------------

class Softmax(Function):
    """y_j = e^{x_j - m} / sum_k e^{x_k - m}  (m = max x, all -inf row -> zeros)

    dx = y * (dy - sum_k dy_k y_k)   (the Jacobian diag(y) - y y^T applied to dy)
    """

    twin = staticmethod(_softmax_twin)

    def forward(self, x, impl="auto"):
        self.impl = impl
        y = kernel.softmax_forward(x, impl=impl)                    # (..., C)
        self.save_for_backward(y)  # the derivative is a function of the output
        return y

    def backward(self, g):
        (y,) = self.saved
        return kernel.softmax_backward(y, g, impl=self.impl)        # (..., C)


class LogSoftmax(Function):
    """y_j = x_j - logsumexp(x);   dx = dy - e^y * sum_k dy_k   (e^y = softmax(x))."""

    twin = staticmethod(_log_softmax_twin)

    def forward(self, x, impl="auto"):
        self.impl = impl
        y = kernel.log_softmax_forward(x, impl=impl)                # (..., C)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return kernel.log_softmax_backward(y, g, impl=self.impl)    # (..., C)


def _along(fn, x, dim, impl, name):
    """fn (a last-axis Function) applied along ``dim``: moved to the end and back (views)."""
    if x.ndim == 0:
        return reshape(fn.apply(reshape(x, 1), impl=impl), ())
    (axis,) = normalize_dims(dim, x.ndim, name)
    if axis == x.ndim - 1:
        return fn.apply(x, impl=impl)
    return transpose(fn.apply(transpose(x, axis, -1), impl=impl), axis, -1)


def softmax(x, dim, impl="auto"):
    return _along(Softmax, x, dim, impl, "softmax")


def log_softmax(x, dim, impl="auto"):
    return _along(LogSoftmax, x, dim, impl, "log_softmax")
