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
    adam_update_many(updates, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad)
        the same for a whole list of parameters, updates = [(p, g, m, v, v_max, t), ...]:
        the small ones in batches of BATCH per numba call (a training step of a small model
        has dozens of parameters, and each call costs several microseconds of dispatch)
"""
import math

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
    # slices, looped from 0: LLVM vectorizes range(n) loops, not range(lo, hi) ones
    p, g, m, v, v_max = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], v_max[lo:hi]
    for k in range(p.size):
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
    # unused when not amsgrad: an empty array, not v again (LLVM vectorizes the loop only
    # when it can see that the arrays do not overlap: aliased, it ran 5x slower)
    v_max = np.empty(0, p.dtype) if v_max is None else v_max.reshape(-1)
    f = p.dtype.type
    hyper = (f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(eps),
             f(lr / bias_correction1), f(bias_correction2_sqrt), f(weight_decay),
             f(1 - lr * weight_decay), bool(decoupled), bool(amsgrad))
    if p.size >= PARALLEL_MIN_SIZE:
        n_chunks = -(-p.size // PARALLEL_MIN_SIZE)
        parallel_items(_adam_items, n_chunks, *flat, v_max, PARALLEL_MIN_SIZE, *hyper)
    else:
        _adam_range(*flat, v_max, 0, p.size, *hyper)


def _kernel_takes(arrays, impl):
    """Whether the numba kernel runs: C-contiguous NumPy arrays of one float dtype."""
    return (_dispatch.choose_impl(*arrays, impl=impl) == "cpu"
            and arrays[0].dtype.kind == "f"
            and all(a.dtype == arrays[0].dtype and a.flags.c_contiguous for a in arrays))


def adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                bias_correction1, bias_correction2_sqrt, impl="auto"):
    """One Adam/AdamW update of p, m, v (and v_max when amsgrad) in place.

    bias_correction1 = 1 - beta1^t, bias_correction2_sqrt = sqrt(1 - beta2^t). The numba
    kernel runs for C-contiguous NumPy arrays of one float dtype; the reference otherwise.
    """
    fast = _kernel_takes([a for a in (p, g, m, v, v_max) if a is not None], impl)
    update = _adam_update_cpu if fast else adam_update_ref
    update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
           bias_correction1, bias_correction2_sqrt)


# ---------------------------------------------------------------------------------------------
# Many parameters at once
# ---------------------------------------------------------------------------------------------

BATCH = 8   # arrays per numba call: one compiled signature (tuples of 8) for any model


@njit(cache=True, error_model="numpy")
def _adam_batch(ps, gs, ms, vs, v_maxs, step_sizes, bias_corrections2_sqrt, beta1,
                one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor,
                decoupled, amsgrad):
    """_adam_range over whole arrays: the i-th flat parameter of the tuples with its own
    step size lr / (1 - beta1^t) and sqrt(1 - beta2^t) (its own step count t)."""
    for i in range(len(ps)):
        _adam_range(ps[i], gs[i], ms[i], vs[i], v_maxs[i], 0, ps[i].size, beta1,
                    one_minus_beta1, beta2, one_minus_beta2, eps, step_sizes[i],
                    bias_corrections2_sqrt[i], weight_decay, decay_factor, decoupled, amsgrad)


def adam_update_many(updates, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad,
                     impl="auto"):
    """adam_update for each (p, g, m, v, v_max, t) of ``updates`` (t: that parameter's step
    count, from 1). Parameters the numba kernel takes and that are small are updated BATCH at
    a time; the others one by one with adam_update."""
    batched = {}
    for p, g, m, v, v_max, t in updates:
        arrays = (p, g, m, v) if v_max is None else (p, g, m, v, v_max)
        if p.size >= PARALLEL_MIN_SIZE or not _kernel_takes(arrays, impl):
            adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, decoupled,
                        amsgrad, 1 - beta1 ** t, math.sqrt(1 - beta2 ** t), impl=impl)
            continue
        flat = [a.reshape(-1) for a in arrays]
        if v_max is None:
            flat.append(np.empty(0, p.dtype))            # unused (see _adam_update_cpu)
        batched.setdefault(p.dtype, []).append((*flat, t))
    for dtype, items in batched.items():
        f = dtype.type
        hyper = (f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(eps), f(weight_decay),
                 f(1 - lr * weight_decay), bool(decoupled), bool(amsgrad))
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            pad = BATCH - len(chunk)                     # padded with empty arrays
            if pad:
                empty = np.empty(0, dtype)
                chunk = chunk + [(empty,) * 5 + (1,)] * pad
            columns = list(zip(*chunk))
            # the scalars exactly as adam_update computes them (Python floats, then dtype)
            step_sizes = np.array([lr / (1 - beta1 ** t) for t in columns[5]], dtype)
            bias_corrections2_sqrt = np.array([math.sqrt(1 - beta2 ** t) for t in columns[5]],
                                              dtype)
            _adam_batch(*[tuple(c) for c in columns[:5]], step_sizes,
                        bias_corrections2_sqrt, *hyper)
