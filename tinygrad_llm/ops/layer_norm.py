"""Layer normalization: the composite twin, then the Function that runs the kernel.

    mu = mean(x),  var = mean((x - mu)^2),  rstd = 1 / sqrt(var + eps)
    xhat = (x - mu) * rstd,   y = xhat * w + b          (over the last axis, C features)

Read the twin first: autograd differentiates it through mean, sub, mul and div. The Function
computes the same in one pass per direction and must agree with it in value and gradient
(tests/test_op_layer_norm.py). Its second derivatives (create_graph=True) are those of the twin:
the Function declares it as ``twin`` and backprop.py differentiates through it.

Kernels: kernels/layer_norm.py (NumPy reference, numba CPU, numba CUDA).
"""
from ..autograd import Function
from ..kernels import layer_norm as kernel
from .elementwise import mul, sub
from .reduce import mean


def layer_norm_composite(x, n_dims, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``n_dims`` axes: (x - mean) / sqrt(var + eps) * w + b."""
    dims = tuple(range(x.ndim - n_dims, x.ndim))
    mu = mean(x, dims, keepdim=True)
    xc = sub(x, mu)
    var = mean(mul(xc, xc), dims, keepdim=True)                  # biased, as in PyTorch
    y = xc / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _layer_norm_twin(x, weight, bias, eps=1e-5, impl="auto"):
    return layer_norm_composite(x, 1, weight, bias, eps)


class LayerNorm(Function):
    """y = (x - mu) * rstd * w + b over the last axis (formulas in the module docstring).

    Backward (per row, with dxhat = dy * w):
        dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dw = sum over rows of dy * xhat,   db = sum over rows of dy
    A constant row has var = 0: xhat = 0, y = b and dx = (dxhat - mean(dxhat)) / sqrt(eps),
    finite (as in PyTorch).
    """

    twin = staticmethod(_layer_norm_twin)

    def forward(self, x, weight, bias, eps=1e-5, impl="auto"):
        self.impl, self.eps = impl, eps
        self.has_bias = bias is not None
        y, mean, rstd = kernel.layer_norm_forward(x, weight, bias, eps, impl=impl)  # (..., C)
        self.save_for_backward(x, weight, mean, rstd)    # mean, rstd (...,): one per row
        return y

    def backward(self, g):
        x, weight, mean, rstd = self.saved
        return kernel.layer_norm_backward(g, x, weight, mean, rstd, has_bias=self.has_bias,
                                          impl=self.impl)  # dx (..., C), dw (C,), db (C,)


def layer_norm(x, weight=None, bias=None, eps=1e-5, impl="auto"):
    """LayerNorm over the last axis of x (..., C); weight and bias (C,) or None."""
    return LayerNorm.apply(x, weight, bias, eps=eps, impl=impl)
