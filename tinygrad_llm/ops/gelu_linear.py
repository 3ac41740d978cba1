"""GELU followed by a Linear layer, as one op: a transformer MLP's second half.

    h = gelu(x),   y = h W^T + b            x (..., in), W (out, in) as in PyTorch

The MLP's hidden layer x is its widest activation (4 x the model width). As two ops, GELU
keeps x for its backward and the Linear keeps h = gelu(x): two arrays of that size per layer.
This op keeps x alone and computes h again in backward, one elementwise pass:

    h = gelu(x),   dW = dy^T h,   db = sum of dy over all rows,   dx = (dy W) * gelu'(x)

The twin is the two ops in a row, which gradients of gradients go through.
"""
from ..autograd import Function
from ..dtypes import to_float
from ..kernels.fastnp import array_module
from .activation import gelu, gelu_input_grad, gelu_values
from .array_methods import sum_over
from .matmul import _rows, linear, linear_values


def _gelu_linear_twin(x, weight, bias=None, approximate="none"):
    return linear(gelu(x, approximate), weight, bias)


class GeluLinear(Function):
    """y = gelu(x) W^T + b, saving x and W only (module docstring)."""

    twin = staticmethod(_gelu_linear_twin)

    def forward(self, x, weight, bias=None, approximate="none"):
        x = to_float(x)
        self.approximate = approximate
        self.save_for_backward(x, weight)
        return linear_values(gelu_values(x, approximate), weight, bias, "gelu_linear")

    def backward(self, g):
        x, weight = self.saved
        xp = array_module(g)
        need_x, need_w, need_b = self.needs_input_grad[:3]          # (approximate: none)
        g2 = _rows(g)                                                 # (N, out)
        db = sum_over(g2, 0) if need_b else None                      # (out,)
        # one array of x's size at a time: h goes before dh exists, dx is written over dh
        dw = dx = None
        if need_w:
            dw = xp.matmul(g2.T, _rows(gelu_values(x, self.approximate)))         # (out, in)
        if need_x:
            dh = xp.matmul(g2, weight).reshape(x.shape)                 # (..., in), fresh
            dx = gelu_input_grad(x, dh, self.approximate, in_place=True)
        return dx, dw, db, None


def gelu_linear(x, weight, bias=None, approximate="none"):
    """linear(gelu(x, approximate), weight, bias), keeping x only for backward."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu_linear: approximate must be 'none' or 'tanh', got "
                         f"{approximate!r}")
    return GeluLinear.apply(x, weight, bias, approximate)
