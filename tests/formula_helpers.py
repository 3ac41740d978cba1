"""Helpers shared by the formula tests (test_formulas.py, test_formulas_models.py)."""
import math

import numpy as np

import tinygrad_llm as tg


def t64(a, grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def close(actual, expected, tol=1e-10):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=tol,
                               atol=tol)


def randomize(module, rng, scale=0.5):
    """float64 parameters with random values (so zero biases and unit gains do not hide
    a mistake)."""
    module.double()
    for _, p in module.named_parameters():
        p.data[...] = rng.normal(0.0, scale, p.shape)
    return module


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def softmax_list(z):
    e = [math.exp(v) for v in z]
    s = sum(e)
    return [v / s for v in e]
