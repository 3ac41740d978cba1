"""tinygrad_llm: a small deep-learning framework with every formula written out by hand.

    import tinygrad_llm as tg
    x = tg.randn(3, 4, requires_grad=True)
    loss = (x.tanh() * 2).sum()
    loss.backward()          # x.grad now holds d(loss)/dx

Reading order: backend.py -> autograd.py -> tensor.py -> ops/ -> functional.py -> nn/ ...
"""
from . import backend
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .creation import (Generator, arange, empty, eye, full, full_like, linspace, manual_seed,
                       ones, ones_like, rand, rand_like, randint, randn, randn_like, tensor,
                       zeros, zeros_like)
from .ops import (abs, amax, amin, argmax, argmin, cat, chunk, clamp, exp, gather, log,
                  logsumexp, matmul, maximum, mean, minimum, sigmoid, split, sqrt, stack, tanh,
                  where)
from .tensor import Tensor
from . import functional  # noqa: E402

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"
