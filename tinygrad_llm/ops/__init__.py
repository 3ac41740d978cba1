"""Differentiable ops, one Function per op (forward and backward side by side).

Primitive ops (the formulas autograd composes):

    elementwise.py  add sub mul div neg pow maximum minimum clamp where masked_fill cast clone
                    to_device, dropout's mask multiply (PyTorch's dtype promotion: dtypes.py)
    unary.py        exp log log2 log1p expm1 sqrt rsqrt reciprocal abs, floor ceil round trunc
                    sign
    trig.py         sin cos tan asin acos atan sinh cosh asinh atanh erf
    activation.py   tanh sigmoid relu leaky_relu gelu (exact; tanh form on kernels/gelu.py)
                    silu softplus logsigmoid elu hardsigmoid hardswish, normalize
    reduce.py       sum mean var std amax amin max min argmax argmin prod norm
                    logsumexp
    binary.py       remainder fmod copysign, divide(rounding_mode=) floor_divide
    logical.py      isfinite isinf isposinf isneginf isnan logical_not/and/or/xor, any all
                    (no grad)
    scan.py         cumsum cumprod (exact with zeros) cummax cummin
    sorting.py      sort argsort msort topk kthvalue (values gathered: gather's gradient)
    movement.py     repeat repeat_interleave flip roll tril triu unflatten unfold meshgrid
    pad.py          pad (F.pad: constant reflect replicate circular)
    einsum.py       einsum (backward: one more einsum per operand; ellipsis, diagonals)
    scatter.py      scatter scatter_add scatter_reduce index_select masked_select; nonzero
                    one_hot (no grad)
    shape.py        reshape flatten squeeze unsqueeze permute transpose expand
    indexing.py     getitem gather cat stack split chunk narrow, embedding
    matmul.py       matmul, linear

What the backward formulas share (each written once, for arrays and, when the backward pass is
recorded with create_graph=True, for Tensors):

    broadcasting.py  unbroadcast (the adjoint of broadcasting), dtype promotion of operands
    array_methods.py xp.reshape / sum / astype / cumsum: the array's own method on arrays (a
                     few us cheaper), NumPy's function on Tensors

Op families with a kernel: each file holds the composite twin (made of the primitive ops
above; read it first), then the Function that calls the kernel in kernels/, which must agree
with the twin in value and gradient:

    softmax.py      softmax log_softmax           kernels/softmax.py
    layer_norm.py   layer_norm                    kernels/layer_norm.py
    attention.py    scaled_dot_product_attention  kernels/attention.py
    cross_entropy.py cross_entropy                kernels/cross_entropy.py
    lstm.py         lstm_cell, lstm_layer         kernels/lstm.py
    gelu_linear.py  gelu_linear (GELU, then a Linear that keeps only the GELU's input)
    layer_norm_linear.py  layer_norm_linear (LayerNorm, then a Linear; keeps only x)
"""
from .activation import (elu, gelu, hardsigmoid, hardswish, leaky_relu, logsigmoid, normalize,
                         relu, sigmoid, silu, softplus, tanh)
from .binary import copysign, divide, floor_divide, fmod, remainder
from .einsum import einsum
from .elementwise import (add, cast, clamp, clone, div, masked_fill, maximum, minimum, mul, neg,
                          pow, sub, to_device, unbroadcast, where)
from .indexing import cat, chunk, embedding, gather, getitem, narrow, split, stack
from .layer_norm import layer_norm
from .logical import (all, any, isfinite, isinf, isnan, isneginf, isposinf, logical_and,
                      logical_not, logical_or, logical_xor)
from .matmul import linear, matmul
from .movement import (flip, meshgrid, repeat, repeat_interleave, roll, tril, triu, unflatten,
                       unfold)
from .pad import pad
from .reduce import (amax, amin, argmax, argmin, logsumexp, max, mean, min, norm, prod, std, sum,
                     var)
from .scan import cummax, cummin, cumprod, cumsum
from .scatter import (index_select, masked_select, nonzero, one_hot, scatter, scatter_add,
                      scatter_reduce)
from .shape import expand, flatten, permute, reshape, squeeze, transpose, unsqueeze, view
from .softmax import log_softmax, softmax
from .sorting import argsort, kthvalue, msort, sort, topk
from .trig import acos, asin, asinh, atan, atanh, cos, cosh, erf, sin, sinh, tan
from .unary import (abs, ceil, exp, expm1, floor, log, log1p, log2, reciprocal, round, rsqrt,
                    sign, sqrt, trunc)

__all__ = [
    "all", "any", "argsort", "copysign", "cummax", "cummin", "cumprod", "cumsum", "divide",
    "einsum", "elu", "flip", "floor_divide", "fmod", "hardsigmoid", "hardswish", "index_select",
    "isfinite", "isinf", "isnan", "isneginf", "isposinf", "kthvalue", "logical_and",
    "logical_not", "logical_or", "logical_xor", "logsigmoid", "masked_select", "meshgrid",
    "msort", "nonzero", "norm", "normalize", "one_hot", "pad", "prod", "remainder", "repeat",
    "repeat_interleave", "roll", "scatter", "scatter_add", "scatter_reduce", "sort", "topk",
    "tril", "triu", "unflatten", "unfold",
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
