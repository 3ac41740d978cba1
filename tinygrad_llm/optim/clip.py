"""Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.

    total = (sum over all gradients of |g|^q)^(1/q)      q = norm_type (max |g| for inf)
    g <- g * min(1, max_norm / (total + 1e-6))           every gradient scaled by one factor

The norm is accumulated in float64, so float32 gradients of 1e30 give a finite norm and finite
clipped gradients (PyTorch's float32 norm overflows to inf there and zeroes them).
"""
import math

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for p in parameters:
        p = p[1] if isinstance(p, tuple) else p              # named_parameters() pairs too
        if p.grad is not None:
            out.append(p.grad)
    return out


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their joint norm is at most max_norm; return the
    norm before clipping (a 0-d Tensor in the gradients' dtype)."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    norm_type = float(norm_type)
    xp = get_array_module(grads[0].data)
    if math.isinf(norm_type):
        total = max(float(xp.abs(g.data).max()) if g.data.size else 0.0 for g in grads)
    else:
        acc = 0.0
        for g in grads:
            a = xp.abs(g.data.astype(np.float64))
            acc += float((a ** norm_type).sum())
        total = acc ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite ({total}), so it cannot be clipped. To "
                           f"disable this error and scale the gradients by the non-finite norm "
                           f"anyway, set `error_if_nonfinite=False`")
    clip_coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.data *= g.data.dtype.type(clip_coef)
    return Tensor._wrap(xp.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.data.clip(-clip_value, clip_value, out=g.data)
