"""tinygrad_llm: a small deep-learning framework with every formula written out by hand.

    import tinygrad_llm as tg
    x = tg.randn(3, 4, requires_grad=True)
    loss = (x.tanh() * 2).sum()
    loss.backward()          # x.grad now holds d(loss)/dx

The top-level names follow PyTorch's (tg.sin, tg.float32, tg.nn, tg.optim, tg.save, ...), so
that a PyTorch program runs with ``import tinygrad_llm as torch`` (docs/PORTING.md).

Reading order: backend.py -> autograd.py -> tensor.py -> ops/ -> functional.py -> nn/ ...
"""
from . import backend
from .autograd import (Function, enable_grad, inference_mode, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .backend import device
from .creation import (Generator, arange, empty, eye, from_numpy, full, full_like, linspace,
                       manual_seed, multinomial, ones, ones_like, rand, rand_like, randint,
                       randn, randn_like, randperm, tensor, zeros, zeros_like)
from .dtypes import (bool, double, float, float16, float32, float64, get_default_dtype,  # noqa
                     half, int, int8, int16, int32, int64, long, set_default_dtype, short,
                     uint8)
from .ops import *  # noqa: F401,F403  (every op: exp, sin, matmul, softmax, cat, ...)
from .ops import divide as div  # noqa: E402  (torch.div takes rounding_mode=)
from .tensor import Tensor
from . import tensor_namespace  # noqa: E402,F401  (array_module(Tensor): see backprop.py)
from . import functional  # noqa: E402
from . import autograd, cuda, func, nn, optim, utils  # noqa: E402
from .serialization import load, save  # noqa: E402

__version__ = "0.1.0"


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


def is_floating_point(input):
    return input.dtype.kind == "f"


# PyTorch names that cannot be honest here: a clear error that says what to do instead
_UNSUPPORTED = {
    "bfloat16": "bfloat16 has no NumPy dtype; use tinygrad_llm.float32 (or float16 to save "
                "memory)",
    "compile": "there is no graph compiler: call the model directly (remove torch.compile); "
               "the fused kernels in kernels/ already run compiled by numba",
    "backends": "there are no torch.backends switches: the kernel implementation is chosen "
                "per call with impl= or by TINYGRAD_LLM_KERNELS=ref (kernels/_dispatch.py)",
    "jit": "there is no TorchScript: use the Python model directly",
    "mps": "there is no Apple GPU backend: the devices are 'cpu' and 'cuda' (CuPy)",
}


def __getattr__(name):
    if name in _UNSUPPORTED:
        raise NotImplementedError(f"tinygrad_llm.{name}: {_UNSUPPORTED[name]}")
    raise AttributeError(f"module 'tinygrad_llm' has no attribute {name!r}")
