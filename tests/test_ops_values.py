"""Forward values against NumPy, on every backend, and bad input that must raise clearly."""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm.backend import to_numpy

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))
P = np.abs(A) + 0.5

UNARY = [
    ("exp", lambda t: t.exp(), np.exp(A), A),
    ("log", lambda t: t.log(), np.log(P), P),
    ("sqrt", lambda t: t.sqrt(), np.sqrt(P), P),
    ("abs", lambda t: t.abs(), np.abs(A), A),
    ("neg", lambda t: -t, -A, A),
    ("tanh", lambda t: t.tanh(), np.tanh(A), A),
    ("sigmoid", lambda t: t.sigmoid(), 1 / (1 + np.exp(-A)), A),
    ("relu", lambda t: t.relu(), np.maximum(A, 0), A),
    ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"),
     0.5 * A * (1 + np.tanh(np.sqrt(2 / np.pi) * (A + 0.044715 * A ** 3))), A),
    ("clamp", lambda t: t.clamp(-0.5, 0.5), np.clip(A, -0.5, 0.5), A),
    ("pow", lambda t: t ** 3, A ** 3, A),
    ("sum", lambda t: t.sum(1), A.sum(1), A),
    ("mean", lambda t: t.mean((0, 1), keepdim=True), A.mean((0, 1), keepdims=True), A),
    ("var", lambda t: t.var(0), A.var(0, ddof=1), A),
    ("std", lambda t: t.std(-1, correction=0), A.std(-1), A),
    ("amax", lambda t: t.amax(-1), A.max(-1), A),
    ("min", lambda t: t.min(), A.min(), A),
    ("logsumexp", lambda t: t.logsumexp(1), np.log(np.exp(A).sum(1)), A),
    ("softmax", lambda t: F.softmax(t, -1), np.exp(A) / np.exp(A).sum(-1, keepdims=True), A),
    ("log_softmax", lambda t: F.log_softmax(t, 0),
     A - np.log(np.exp(A).sum(0, keepdims=True)), A),
    ("transpose", lambda t: t.T, A.T, A),
    ("reshape", lambda t: t.reshape(2, -1), A.reshape(2, -1), A),
    ("getitem", lambda t: t[[2, 0, 2], 1:], A[[2, 0, 2], 1:], A),
    ("flatten", lambda t: t.flatten(), A.ravel(), A),
]


@pytest.mark.parametrize("name, fn, expected, x", UNARY, ids=[u[0] for u in UNARY])
def test_unary_values(xp, name, fn, expected, x):
    out = fn(tg.tensor(xp.asarray(x)))
    np.testing.assert_allclose(to_numpy(out.data), expected, rtol=1e-12, atol=1e-12)


BINARY = [
    ("add", lambda a, b: a + b, A + B),
    ("sub", lambda a, b: a - b, A - B),
    ("mul", lambda a, b: a * b, A * B),
    ("div", lambda a, b: a / (b.abs() + 1), A / (np.abs(B) + 1)),
    ("maximum", tg.maximum, np.maximum(A, B)),
    ("matmul", lambda a, b: a @ b.T, A @ B.T),
    ("cat", lambda a, b: tg.cat([a, b], 1), np.concatenate([A, B], 1)),
    ("stack", lambda a, b: tg.stack([a, b], -1), np.stack([A, B], -1)),
    ("where", lambda a, b: tg.where(a > b, a, b), np.where(A > B, A, B)),
]


@pytest.mark.parametrize("name, fn, expected", BINARY, ids=[b[0] for b in BINARY])
def test_binary_values(xp, name, fn, expected):
    out = fn(tg.tensor(xp.asarray(A)), tg.tensor(xp.asarray(B)))
    np.testing.assert_allclose(to_numpy(out.data), expected, rtol=1e-12, atol=1e-12)


def test_gelu_exact_matches_erf_formula():
    import math
    x = np.linspace(-6, 6, 101)
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(F.gelu(tg.tensor(x)).numpy(), expected, rtol=1e-13, atol=1e-15)


def test_float32_stays_float32_with_python_scalars():
    x = tg.randn(3)
    assert (x * 2.5 + 1).dtype == np.float32
    assert (2.0 / (x.abs() + 1)).dtype == np.float32


def test_sigmoid_softmax_logsumexp_are_stable_at_extreme_logits():
    big = tg.tensor(np.array([[1e4, 0.0, -1e4], [-1000.0, -1001.0, -1002.0]]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.softmax(big, -1).numpy()
        ls = F.log_softmax(big, -1).numpy()
        sig = tg.tensor([-1000.0, 1000.0], dtype="float64").sigmoid().numpy()
    assert np.all(np.isfinite(s)) and np.allclose(s.sum(-1), 1)
    assert ls[0, 0] == 0.0 and ls[0, 1] == -1e4
    np.testing.assert_array_equal(sig, [0.0, 1.0])


def test_logsumexp_of_an_all_minus_inf_row():
    x = tg.tensor(np.array([[-np.inf, -np.inf], [0.0, 0.0]]), requires_grad=True)
    y = x.logsumexp(1)
    assert y.detach().numpy()[0] == -np.inf
    y[1].backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0], [0.5, 0.5]])


# ----- bad input -----------------------------------------------------------------------------

def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        tg.randn(2, 3) @ tg.randn(4, 5)


def test_broadcast_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2,3\).*\(2,4\)"):
        tg.randn(2, 3) + tg.randn(2, 4)


def test_gather_rejects_negative_and_too_large_indices():
    x = tg.randn(3, 4)
    with pytest.raises(IndexError, match="index -1 is out of bounds for dimension 1"):
        x.gather(1, tg.tensor([[0, -1]] * 3))
    with pytest.raises(IndexError, match="index 4 is out of bounds"):
        x.gather(1, tg.tensor([[4]] * 3))
    with pytest.raises(TypeError, match="integer"):
        x.gather(1, tg.tensor([[0.0]] * 3))


def test_indexing_errors():
    x = tg.randn(3, 4)
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError, match="float"):
        x[tg.tensor([0.0, 1.0])]


def test_dimension_out_of_range():
    with pytest.raises(IndexError, match=r"\[-2, 1\], but got 2"):
        tg.randn(2, 3).sum(2)
    with pytest.raises(IndexError):
        F.softmax(tg.randn(2, 3), 2)


def test_shape_op_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        tg.randn(2, 3).reshape(4)
    with pytest.raises(ValueError, match="except in dimension 0"):
        tg.cat([tg.randn(2, 3), tg.randn(2, 4)])
    with pytest.raises(ValueError, match="add up to 4"):
        tg.randn(5).split([1, 3])
    with pytest.raises(ValueError, match="cannot be expanded"):
        tg.randn(2, 3).expand(4, 3)
    with pytest.raises(TypeError, match="boolean"):
        tg.randn(2).masked_fill(tg.tensor([1, 0]), 0.0)


def test_max_with_dim_returns_values_and_indices():
    x = tg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64
