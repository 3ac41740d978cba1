"""The unfused twins of the fused ops, composed of primitive ops (read these first).

    layer_norm                    mean, subtract, variance, divide, scale, shift
    scaled_dot_product_attention  matmul, add the mask, softmax, (dropout), matmul
    cross_entropy                 log_softmax, gather, weighted mean

autograd differentiates them through their primitive ops; the fused Functions in fused.py
must agree with them in value and gradient (tests/test_fused_ops.py). The attention twin is
also the path F.scaled_dot_product_attention takes for what the fused kernel does not do:
dropout on the attention weights, a mask that needs a gradient, V of another head size.

Shape legend: B batch, H heads, Tq query and Tk key positions, D head size, N rows, C classes.
"""
import math

from ..backend import get_array_module
from .composite import log_softmax, softmax
from .elementwise import mul, sub, where
from .indexing import gather
from .matmul import matmul
from .reduce import mean, sum
from .shape import reshape, transpose


def layer_norm(x, n_dims, weight=None, bias=None, eps=1e-5):
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


def scaled_dot_product_attention(q, k, v, mask=None, scale=None, dropout=None,
                                 softmax_fn=softmax):
    """softmax(Q K^T * scale + mask) V.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv). ``mask`` is an additive float Tensor or
    array broadcastable to (..., Tq, Tk), -inf where a key is hidden. ``dropout`` is None or
    a function applied to the attention weights. ``softmax_fn`` defaults to the composite
    softmax; F passes the fused one, which gives zeros (not NaN) for a fully masked row.
    Returns (out (..., Tq, Dv), weights (..., Tq, Tk)); the weights are those multiplied with
    V, after dropout (as PyTorch's nn.MultiheadAttention returns them).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = matmul(q, transpose(k, -2, -1)) * scale                  # (..., Tq, Tk)
    if mask is not None:
        s = s + mask
    p = softmax_fn(s, -1)                                         # (..., Tq, Tk)
    if dropout is not None:
        p = dropout(p)
    return matmul(p, v), p                                        # (..., Tq, Dv)


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits x (N, C) and class indices target (N,) (an int array).

    loss_n = (1 - e) w_t (-logp_{n,t}) + (e / C) sum_c w_c (-logp_nc), 0 for ignored rows;
    'mean' divides by the sum of w_t over the kept rows (PyTorch's weighted mean).
    """
    xp = get_array_module(x.data)
    n, c = x.shape
    valid = target != ignore_index                                # (N,)
    t = xp.where(valid, target, 0)                                # (N,)
    logp = log_softmax(x, -1)                                     # (N, C)
    nll = -reshape(gather(logp, 1, t[:, None]), n)                # (N,)
    w_t = (weight[t] if weight is not None else xp.ones(n, dtype=x.dtype)) * valid
    w_t = w_t.astype(x.dtype)
    loss = nll * ((1 - label_smoothing) * w_t)
    if label_smoothing > 0:
        wl = logp * weight if weight is not None else logp
        smooth = -sum(wl, -1)                                     # (N,)
        loss = loss + smooth * ((label_smoothing / c) * valid.astype(x.dtype))
    zero = xp.zeros((), dtype=x.dtype)
    loss = where(valid, loss, zero)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    return sum(loss) / w_t.sum()
