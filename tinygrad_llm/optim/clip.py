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
    norm before clipping (a 0-d Tensor in the gradients' dtype).

    The norm, the clip coefficient and the scaling stay on the gradients' device: on a GPU no
    value is copied to the host (one sync only with ``error_if_nonfinite``)."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    norm_type = float(norm_type)
    xp = get_array_module(grads[0].data)
    total = xp.zeros((), dtype=np.float64)                   # a device scalar
    for g in grads:
        if g.data.size == 0:
            continue
        a = xp.abs(g.data.astype(np.float64, copy=False))    # (float64: no overflow at 1e30)
        if math.isinf(norm_type):
            total = xp.maximum(total, a.max())
        else:
            total = total + (a * a if norm_type == 2.0 else a ** norm_type).sum()
    if not math.isinf(norm_type):
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite ({float(total)}), so it cannot be "
                           f"clipped. To disable this error and scale the gradients by the "
                           f"non-finite norm anyway, set `error_if_nonfinite=False`")
    clip_coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.data *= clip_coef.astype(g.data.dtype)
    return Tensor._wrap(xp.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.data.clip(-clip_value, clip_value, out=g.data)
