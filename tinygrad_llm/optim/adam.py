"""Adam and AdamW, written out as PyTorch's torch.optim.Adam / AdamW (Kingma & Ba, 2015;
Loshchilov & Hutter, 2019).

For each parameter p with gradient g, at step t = 1, 2, ...:

    g     = g + weight_decay * p                     Adam only: L2 penalty in the gradient
    p     = p * (1 - lr * weight_decay)              AdamW only: decoupled weight decay
    m_t   = beta1 * m_{t-1} + (1 - beta1) * g        first moment: running mean of g
    v_t   = beta2 * v_{t-1} + (1 - beta2) * g^2      second moment: running mean of g^2
    v_max = max(v_max, v_t)                          amsgrad only: never let the step grow back
    m_hat = m_t / (1 - beta1^t)                      bias corrections: m and v start at 0, so
    v_hat = v_t / (1 - beta2^t)                      early averages are too small by 1 - beta^t
    p     = p - lr * m_hat / (sqrt(v_hat) + eps)

The difference between the two: Adam's weight decay passes through the moments (so it is
rescaled per coordinate by 1 / sqrt(v_hat)), AdamW's shrinks every weight by the same factor.
With float32 gradients so large that g^2 overflows (|g| > 1.8e19), v becomes inf and the step
becomes 0, never NaN.
"""
import math

import numpy as np
from numba import njit

from ..autograd import no_grad
from ..backend import get_array_module
from ..kernels._dispatch import choose_impl, parallel_items
from .optimizer import Optimizer


def _check(lr, betas, eps, weight_decay):
    if lr < 0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameters: {betas} (each must be in [0, 1))")
    if weight_decay < 0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam with optional L2 weight decay and AMSGrad (see the module docstring)."""

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _init_state(self, name, p, amsgrad):
        xp = get_array_module(p.data)
        state = {"step": 0,
                 "exp_avg": xp.zeros_like(p.data),       # m: the first moment
                 "exp_avg_sq": xp.zeros_like(p.data)}    # v: the second moment
        if amsgrad:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        self.state[name] = state
        return state

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            (beta1, beta2), amsgrad = group["betas"], group["amsgrad"]
            for name, p, g in self._params_with_grad(group):
                state = self.state.get(name) or self._init_state(name, p, amsgrad)
                state["step"] += 1
                t = state["step"]
                v_max = None
                if amsgrad:
                    v_max = state.get("max_exp_avg_sq")
                    if v_max is None:  # amsgrad switched on after the first steps
                        v_max = state["max_exp_avg_sq"] = get_array_module(g).zeros_like(g)
                update = _adam_update_cpu if _use_kernel(p.data, g, state) else _adam_update_ref
                update(p.data, g, state["exp_avg"], state["exp_avg_sq"], v_max, group["lr"],
                       beta1, beta2, group["eps"], group["weight_decay"],
                       self.decoupled_weight_decay, amsgrad,
                       1 - beta1 ** t, math.sqrt(1 - beta2 ** t))
                self._updated(p)
        return loss


def _adam_update_ref(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled,
                     amsgrad, bias_correction1, bias_correction2_sqrt):
    """One Adam/AdamW update of the arrays p, m, v (and v_max) in place, in NumPy/CuPy."""
    xp = get_array_module(p)
    if weight_decay != 0:
        if decoupled:
            # AdamW: p = p (1 - lr wd), outside the moments
            p *= 1 - lr * weight_decay
        else:
            # Adam: g = g + wd p, the gradient of (wd / 2) |p|^2
            g = g + weight_decay * p
    # m_t = beta1 m_{t-1} + (1 - beta1) g
    m *= beta1
    m += (1 - beta1) * g
    # v_t = beta2 v_{t-1} + (1 - beta2) g^2
    v *= beta2
    v += (1 - beta2) * (g * g)
    if amsgrad:
        # v_max = max(v_max, v_t): the denominator never shrinks
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    # p = p - lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)
    #   = p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
    denom = xp.sqrt(v) / bias_correction2_sqrt + eps
    p -= (lr / bias_correction1) * (m / denom)


# The same update as one pass over memory (numba): the NumPy version above makes about ten
# passes over 4 arrays and allocates temporaries; on the 1.35 M parameters of the LSTM
# benchmark this kernel takes ~1.5 ms instead of ~10. The scalars are converted to the
# parameter's dtype first, so float32 parameters are updated in float32 arithmetic (as
# PyTorch does; float64 scalars would halve the SIMD width). Large tensors are cut into
# chunks of 65,536 elements shared by the kernels' thread pool (the same pool as every other
# kernel, so no second pool spins on the cores); small ones stay on the calling thread.
@njit(cache=True, error_model="numpy")
def _adam_range(p, g, m, v, v_max, lo, hi, beta1, one_minus_beta1, beta2, one_minus_beta2,
                eps, step_size, bias_correction2_sqrt, weight_decay, decay_factor, decoupled,
                amsgrad):
    for k in range(lo, hi):
        gk = g[k]
        if weight_decay != 0:
            if decoupled:
                p[k] = p[k] * decay_factor                     # AdamW: p (1 - lr wd)
            else:
                gk = gk + weight_decay * p[k]                  # Adam: L2 in the gradient
        mk = beta1 * m[k] + one_minus_beta1 * gk               # first moment
        vk = beta2 * v[k] + one_minus_beta2 * (gk * gk)        # second moment
        m[k] = mk
        v[k] = vk
        if amsgrad:
            vk = vk if vk > v_max[k] else v_max[k]             # running max of v
            v_max[k] = vk
        p[k] = p[k] - step_size * (mk / (np.sqrt(vk) / bias_correction2_sqrt + eps))


@njit(cache=True, nogil=True)
def _adam_items(first, stop, step, p, g, m, v, v_max, chunk, beta1, one_minus_beta1, beta2,
                one_minus_beta2, eps, step_size, bias_correction2_sqrt, weight_decay,
                decay_factor, decoupled, amsgrad):
    """Chunks first, first + step, .. < stop of ``chunk`` elements each (one thread's share)."""
    n = p.size
    for k in range(first, stop, step):
        _adam_range(p, g, m, v, v_max, k * chunk, min(n, (k + 1) * chunk), beta1,
                    one_minus_beta1, beta2, one_minus_beta2, eps, step_size,
                    bias_correction2_sqrt, weight_decay, decay_factor, decoupled, amsgrad)


PARALLEL_MIN_SIZE = 1 << 16


def _adam_update_cpu(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled,
                     amsgrad, bias_correction1, bias_correction2_sqrt):
    flat = [a.reshape(-1) for a in (p, g, m, v)]             # views: all are C-contiguous
    v_max = flat[3] if v_max is None else v_max.reshape(-1)  # unused when not amsgrad
    f = p.dtype.type
    hyper = (f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(eps),
             f(lr / bias_correction1), f(bias_correction2_sqrt), f(weight_decay),
             f(1 - lr * weight_decay), bool(decoupled), bool(amsgrad))
    if p.size >= PARALLEL_MIN_SIZE:
        n_chunks = -(-p.size // PARALLEL_MIN_SIZE)
        parallel_items(_adam_items, n_chunks, *flat, v_max, PARALLEL_MIN_SIZE, *hyper)
    else:
        _adam_range(*flat, v_max, 0, p.size, *hyper)


def _use_kernel(p, g, state):
    arrays = [p, g, state["exp_avg"], state["exp_avg_sq"]]
    if state.get("max_exp_avg_sq") is not None:
        arrays.append(state["max_exp_avg_sq"])
    return (choose_impl(*arrays) == "cpu" and len({a.dtype for a in arrays}) == 1
            and all(a.flags.c_contiguous for a in arrays))


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=1e-2, as PyTorch)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
