"""Layer normalization followed by a Linear layer, as one op: how each transformer sub-block
starts (GPT's ln_1 -> c_attn, ln_2 -> c_fc).

    n = (x - mean) * rstd * w_ln + b_ln,   y = n W^T + b        x (..., C), W (out, C)

As two ops, LayerNorm keeps x (with mean and rstd, one per row) and the Linear keeps n: two
arrays of x's size per pair. This op keeps x, mean and rstd only, and computes n again in
backward (one pass over x):

    dW = dy^T n,   db = sum of dy over all rows,   dn = dy W,
    then LayerNorm's backward of dn (ops/layer_norm.py):  dx, dw_ln, db_ln

The twin is the two ops in a row, which gradients of gradients go through.
"""
from ..autograd import Function
from ..kernels import layer_norm as kernel
from ..kernels.fastnp import array_module
from .array_methods import sum_over
from .layer_norm import layer_norm
from .matmul import _rows, linear, linear_values


def _layer_norm_linear_twin(x, ln_weight, ln_bias, weight, bias=None, eps=1e-5):
    return linear(layer_norm(x, ln_weight, ln_bias, eps), weight, bias)


class LayerNormLinear(Function):
    """y = layer_norm(x) W^T + b, saving x, mean and rstd (module docstring)."""

    twin = staticmethod(_layer_norm_linear_twin)

    def forward(self, x, ln_weight, ln_bias, weight, bias=None, eps=1e-5):
        self.eps = eps
        n, mean, rstd = kernel.layer_norm_forward(x, ln_weight, ln_bias, eps)      # (..., C)
        self.save_for_backward(x, ln_weight, ln_bias, weight, mean, rstd)
        return linear_values(n, weight, bias, "layer_norm_linear")                # (..., out)

    def backward(self, g):
        x, ln_weight, ln_bias, weight, mean, rstd = self.saved
        xp = array_module(g)
        need_x, need_lw, need_lb, need_w, need_b = self.needs_input_grad[:5]
        g2 = _rows(g)                                                 # (N, out)
        db = sum_over(g2, 0) if need_b else None                      # (out,)
        dw = None
        if need_w:                      # n again, dropped once dW has it
            n, _, _ = kernel.layer_norm_forward(x, ln_weight, ln_bias, self.eps)
            dw = xp.matmul(g2.T, _rows(n))                            # (out, C)
            del n
        dx = dlw = dlb = None
        if need_x or need_lw or need_lb:
            dn = xp.matmul(g2, weight).reshape(x.shape)               # (..., C)
            dx, dlw, dlb = kernel.layer_norm_backward(dn, x, ln_weight, mean, rstd,
                                                      has_bias=ln_bias is not None)
        return dx, dlw, dlb, dw, db, None


def layer_norm_linear(x, ln_weight, ln_bias, weight, bias=None, eps=1e-5):
    """linear(layer_norm(x, ln_weight, ln_bias, eps), weight, bias) over the last axis of x,
    keeping x (not the normalized values) for backward."""
    return LayerNormLinear.apply(x, ln_weight, ln_bias, weight, bias, eps)
