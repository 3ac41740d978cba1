"""The functional interface, ``import tinygrad_llm.functional as F`` (PyTorch's names).

Everything here is a plain function of tensors. The formulas live in ``tinygrad_llm.ops``.
"""
from .ops import (gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus,
                  tanh)

__all__ = ["gelu", "leaky_relu", "log_softmax", "relu", "sigmoid", "silu", "softmax",
           "softplus", "tanh"]
