"""Differentiable ops, one Function per op (forward and backward side by side).

    elementwise.py  add sub mul div neg pow exp log sqrt abs maximum minimum clamp where cast
    activation.py   tanh sigmoid relu leaky_relu gelu silu softplus
    reduce.py       sum mean var std amax amin max min argmax argmin logsumexp
    shape.py        reshape flatten squeeze unsqueeze permute transpose expand
    indexing.py     getitem gather cat stack split chunk narrow
    matmul.py       matmul
    composite.py    softmax log_softmax (the twins of the fused kernels)
"""
from .activation import gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from .composite import log_softmax, softmax
from .elementwise import (abs, add, cast, clamp, clone, div, exp, log, masked_fill, maximum,
                          minimum, mul, neg, pow, sqrt, sub, to_device, unbroadcast, where)
from .indexing import cat, chunk, gather, getitem, narrow, split, stack
from .matmul import matmul
from .reduce import (amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var)
from .shape import expand, flatten, permute, reshape, squeeze, transpose, unsqueeze, view

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "cast", "cat", "chunk", "clamp", "clone",
    "div", "exp", "expand", "flatten", "gather", "gelu", "getitem", "leaky_relu", "log",
    "log_softmax", "logsumexp", "masked_fill", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "narrow", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "silu",
    "softmax", "softplus", "split", "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh",
    "to_device", "transpose", "unbroadcast", "unsqueeze", "var", "view", "where",
]
