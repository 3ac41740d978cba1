"""Tensor methods with PyTorch's names, each forwarding to one op: compared with torch's
methods of the same name on the same values (and gradients where differentiable)."""
import numpy as np
import pytest

import tinygrad_llm as tg
from torch_parity import parity

RNG = np.random.default_rng(7)
X = RNG.uniform(0.2, 0.9, (3, 4))          # inside every unary op's domain
Y = RNG.uniform(0.5, 2.0, (3, 4))

UNARY = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh", "erf",
         "log2", "log1p", "expm1", "rsqrt", "reciprocal", "square", "exp", "log", "sqrt", "abs",
         "neg", "negative", "sigmoid", "tanh", "relu"]
FLAT = ["floor", "ceil", "round", "trunc", "sign"]


@pytest.mark.parametrize("name", UNARY + FLAT)
def test_unary_methods(name):
    pytest.importorskip("torch")
    x = X * 3 - 1 if name in FLAT else X
    parity(lambda a: getattr(a, name)(), lambda a: getattr(a, name)(), x)


@pytest.mark.parametrize("call", [
    lambda a, b: a.add(b, alpha=2), lambda a, b: a.sub(b, alpha=0.5), lambda a, b: a.mul(b),
    lambda a, b: a.div(b), lambda a, b: a.true_divide(b), lambda a, b: a.subtract(b),
    lambda a, b: a.multiply(b), lambda a, b: a.divide(b), lambda a, b: a.pow(b),
    lambda a, b: a.remainder(b), lambda a, b: a.fmod(b), lambda a, b: a.copysign(-b),
    lambda a, b: a % b, lambda a, b: a.clamp_min(0.5) + b.clamp_max(1.0),
    lambda a, b: a.expand_as(b[None]) * 1, lambda a, b: a.view_as(b.T) * 1,
    lambda a, b: a.reshape_as(b.T) * 1, lambda a, b: a.type_as(b),
])
def test_binary_methods(call):
    pytest.importorskip("torch")
    parity(call, call, X, Y)


@pytest.mark.parametrize("call", [
    lambda a: a.unflatten(1, (2, 2)), lambda a: a.flip(0), lambda a: a.roll(1, 0),
    lambda a: a.repeat(2, 1), lambda a: a.repeat_interleave(2, 0), lambda a: a.tril(),
    lambda a: a.triu(1), lambda a: a.unfold(1, 2, 1), lambda a: a.cumsum(1),
    lambda a: a.cumprod(0), lambda a: a.cummax(1), lambda a: a.cummin(0), lambda a: a.sort(),
    lambda a: a.argsort(0), lambda a: a.topk(2), lambda a: a.kthvalue(1), lambda a: a.msort(),
    lambda a: a.prod(1), lambda a: a.sum(0, dtype=a.dtype), lambda a: a.norm(),
    lambda a: a.masked_select(a > 0.5), lambda a: a.nonzero(), lambda a: (a > 0.5).any(1),
    lambda a: (a > 0.5).all(0), lambda a: a.isfinite(), lambda a: a.isinf(),
    lambda a: a.isnan(), lambda a: a.logical_not(), lambda a: a.index_select(1, (a > 2).long()
                                                                             .sum(0)),
])
def test_other_methods(call):
    pytest.importorskip("torch")
    parity(call, call, X)


def test_nelement_and_contiguous_names():
    t = tg.ones(2, 3)
    assert t.nelement() == t.numel() == 6
