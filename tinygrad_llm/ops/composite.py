"""softmax and log_softmax composed of primitive ops: the readable twins of the fused kernels.

    softmax(x)_i     = e^{x_i - m} / sum_j e^{x_j - m},   m = max_j x_j
    log_softmax(x)_i = x_i - logsumexp(x)

Subtracting the max changes nothing mathematically (it cancels in the ratio) but keeps every
exponent <= 0, so nothing overflows. The max is detached: softmax does not depend on it, so its
gradient contribution would be exactly zero anyway. autograd differentiates these compositions
through exp, sum, div and logsumexp; the fused kernels (kernels/softmax.py) must agree.
"""
from .elementwise import div, exp, sub
from .reduce import amax, logsumexp, sum


def softmax(x, dim):
    shifted = sub(x, amax(x, dim, keepdim=True).detach())
    e = exp(shifted)
    return div(e, sum(e, dim, keepdim=True))


def log_softmax(x, dim):
    return sub(x, logsumexp(x, dim, keepdim=True))
