"""Differentiable ops, one Function per op (forward and backward side by side).

Primitive ops (the formulas autograd composes):

    elementwise.py  add sub mul div neg pow maximum minimum clamp where masked_fill cast clone
                    to_device, dropout's mask multiply (PyTorch's dtype promotion: dtypes.py)
    unary.py        exp log log2 log1p expm1 sqrt rsqrt reciprocal abs, sin cos tan asin acos
                    atan sinh cosh asinh atanh erf, floor ceil round trunc sign
    activation.py   tanh sigmoid relu leaky_relu gelu (exact; tanh form on kernels/gelu.py)
                    silu softplus
    reduce.py       sum mean var std amax amin max min argmax argmin logsumexp
    shape.py        reshape flatten squeeze unsqueeze permute transpose expand
    indexing.py     getitem gather cat stack split chunk narrow, embedding
    matmul.py       matmul, linear

Op families with a kernel: each file holds the composite twin (made of the primitive ops
above; read it first), then the Function that calls the kernel in kernels/, which must agree
with the twin in value and gradient:

    softmax.py      softmax log_softmax           kernels/softmax.py
    layer_norm.py   layer_norm                    kernels/layer_norm.py
    attention.py    scaled_dot_product_attention  kernels/attention.py
    cross_entropy.py cross_entropy                kernels/cross_entropy.py
    lstm.py         lstm_cell, lstm_layer         kernels/lstm.py
"""
from .activation import gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from .elementwise import (add, cast, clamp, clone, div, masked_fill, maximum, minimum, mul, neg,
                          pow, sub, to_device, unbroadcast, where)
from .indexing import cat, chunk, embedding, gather, getitem, narrow, split, stack
from .layer_norm import layer_norm
from .matmul import linear, matmul
from .reduce import (amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var)
from .shape import expand, flatten, permute, reshape, squeeze, transpose, unsqueeze, view
from .softmax import log_softmax, softmax
from .unary import (abs, acos, asin, asinh, atan, atanh, ceil, cos, cosh, erf, exp, expm1, floor,
                    log, log1p, log2, reciprocal, round, rsqrt, sign, sin, sinh, sqrt, tan, trunc)

__all__ = [
    "acos", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh", "erf", "expm1", "floor",
    "log1p", "log2", "reciprocal", "round", "rsqrt", "sign", "sin", "sinh", "tan", "trunc",
    "abs", "add", "amax", "amin", "argmax", "argmin", "cast", "cat", "chunk", "clamp", "clone",
    "div", "embedding", "exp", "expand", "flatten", "gather", "gelu", "getitem", "layer_norm",
    "leaky_relu", "linear", "log", "log_softmax", "logsumexp", "masked_fill", "matmul", "max",
    "maximum", "mean", "min", "minimum", "mul", "narrow", "neg", "permute", "pow", "relu",
    "reshape", "sigmoid", "silu", "softmax", "softplus", "split", "sqrt", "squeeze", "stack",
    "std", "sub", "sum", "tanh", "to_device", "transpose", "unbroadcast", "unsqueeze", "var",
    "view", "where",
]
