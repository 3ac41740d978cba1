"""Basic layers with PyTorch's names, parameter layouts and default initializations.

    Linear(in_features, out_features)      weight (out, in), bias (out,)
    Embedding(num_embeddings, dim)         weight (V, C); ids (...) -> (..., C)
    LayerNorm(normalized_shape)            weight, bias (normalized_shape)
    Dropout(p), Identity, Flatten, ReLU, GELU, Tanh, Sigmoid, Softmax(dim)

Shape legend: N any leading axes, V vocabulary size, C channels / features.

Each layer takes ``device=`` and ``dtype=`` (PyTorch's factory arguments; float32 by default)
and, beyond PyTorch, ``generator=`` for a seeded initialization (``tinygrad_llm.Generator``);
without it the default generator (``tinygrad_llm.manual_seed``) is used.
"""
import math

import numpy as np

from .. import functional as F
from ..backend import to_device
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


def _empty(shape, device, dtype):
    """A zero-filled Parameter to be initialized in place."""
    array = np.zeros(shape, dtype=np.dtype(dtype or np.float32))
    return Parameter(to_device(array, device or "cpu"))


class Identity(Module):
    """y = x."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b;  x (N, in) -> y (N, out).

    Initialization (PyTorch's): W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with
    a = sqrt(5)), b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None,
                 generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), device, dtype)
        if bias:
            self.bias = _empty((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """y = W[ids]: ids (N) integers in [0, V) -> (N, C). Initialization: W ~ N(0, 1).

    The row padding_idx is zero at initialization and gets no gradient. Negative or too large
    ids raise IndexError (never wrapped around); float ids raise TypeError.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, device=None,
                 dtype=None, generator=None, _weight=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.weight = _empty((num_embeddings, embedding_dim), device, dtype)
        if _weight is not None:
            raw = _weight.data if isinstance(_weight, Tensor) else _weight
            self.weight.data[...] = to_device(raw, self.weight.device)     # from any device
        else:
            self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape.

    weight starts at 1 and bias at 0 (PyTorch); elementwise_affine=False has neither.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = _empty(self.normalized_shape, device, dtype)
            init.ones_(self.weight)
            if bias:
                self.bias = _empty(self.normalized_shape, device, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Dropout(Module):
    """Training: zero each element with probability p, scale the rest by 1 / (1 - p).
    Eval (``module.eval()``): the identity. The masks come from ``generator`` (seeded)."""

    def __init__(self, p=0.5, inplace=False, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.generator = generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Flatten the axes start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)


# ----- activations as modules ---------------------------------------------------------------

class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """y = x Phi(x) (approximate='none', exact, erf) or GPT-2's tanh form ('tanh')."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """y = 1 / (1 + e^-x)."""

    def forward(self, x):
        return F.sigmoid(x)


class Softmax(Module):
    """y = softmax(x) along ``dim`` (fused kernel)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
