"""Adam and AdamW updates of one parameter: arrays in, updated in place.

The update rule (optim/adam.py, Kingma & Ba 2015; Loshchilov & Hutter 2019), at step t:

    m_t = beta1 m_{t-1} + (1 - beta1) g,   v_t = beta2 v_{t-1} + (1 - beta2) g^2
    p   = p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m_t / (1 - beta1^t), v_hat likewise
    (Adam: g += weight_decay p first; AdamW: p *= 1 - lr weight_decay first; amsgrad: the
    running max of v_t in the denominator)

    (a) reference   the rule in NumPy/CuPy, line by line (the specification)
    (b) numba CPU   the same update as one pass over memory: the reference makes about ten
                    passes over 4 arrays and allocates temporaries. The scalars are converted
                    to the parameter's dtype first, so float32 parameters are updated in
                    float32 arithmetic (as PyTorch does; float64 scalars would halve the SIMD
                    width). Large tensors are cut into chunks shared by the kernels' thread
                    pool; small ones stay on the calling thread.

    adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                bias_correction1, bias_correction2_sqrt)
"""
import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch
from ._dispatch import parallel_items


# ---------------------------------------------------------------------------------------------
# (a) Reference
# ---------------------------------------------------------------------------------------------

def adam_update_ref(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled,
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



# ---------------------------------------------------------------------------------------------
# (b) Numba CPU: one pass over memory
# ---------------------------------------------------------------------------------------------

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


def adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                bias_correction1, bias_correction2_sqrt, impl="auto"):
    """One Adam/AdamW update of p, m, v (and v_max when amsgrad) in place.

    bias_correction1 = 1 - beta1^t, bias_correction2_sqrt = sqrt(1 - beta2^t). The numba
    kernel runs for C-contiguous NumPy arrays of one float dtype; the reference otherwise.
    """
    arrays = [a for a in (p, g, m, v, v_max) if a is not None]
    fast = (_dispatch.choose_impl(*arrays, impl=impl) == "cpu"
            and len({a.dtype for a in arrays}) == 1 and p.dtype.kind == "f"
            and all(a.flags.c_contiguous for a in arrays))
    update = _adam_update_cpu if fast else adam_update_ref
    update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
           bias_correction1, bias_correction2_sqrt)


