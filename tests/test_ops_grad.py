"""Float64 property-based gradient checks: one per differentiable op.

Each case draws inputs with the public strategies (bounded, away from kinks and ties where
the op has them) and runs tinygrad_llm.testing.gradcheck on them.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm.ops.softmax import log_softmax_composite, softmax_composite
from tinygrad_llm.testing import gradcheck
from tinygrad_llm.testing import strategies as tst


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, *arrays):
    assert gradcheck(fn, [leaf(a) for a in arrays])


def _pairs(elements_a=None, elements_b=None):
    """Two arrays of mutually broadcastable shapes."""
    return tst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
        tst.arrays(shape=st.just(s[0]), elements=elements_a),
        tst.arrays(shape=st.just(s[1]), elements=elements_b)))


# ----- elementwise binary, with broadcasting ---------------------------------------------------

@given(_pairs())
def test_add(ab):
    check(lambda a, b: a + b, *ab)


@given(_pairs())
def test_sub(ab):
    check(lambda a, b: a - b, *ab)


@given(_pairs())
def test_mul(ab):
    check(lambda a, b: a * b, *ab)


@given(_pairs(elements_b=tst.floats(0.5, 5)))
def test_div(ab):
    check(lambda a, b: a / b, *ab)


@given(_pairs(tst.floats(0.5, 3), tst.floats(-2, 2)))
def test_pow_tensor_exponent(ab):
    check(lambda a, b: a ** b, *ab)


@given(tst.positive(), st.sampled_from([-1.5, -1, 0.5, 2, 3]))
def test_pow_scalar_exponent(x, p):
    check(lambda a: a ** p, x)


@given(tst.arrays(elements=tst.floats(-2, 2)))
def test_rpow_scalar_base(x):
    check(lambda a: 2.5 ** a, x)


@given(tst.arrays(), tst.floats(-3, 3))
def test_scalar_arithmetic(x, c):
    check(lambda a: (c - a) * 2 + a / 4 - (-a) + c, x)


@given(_pairs(tst.floats(-10, 10), tst.floats(-10, 10)).filter(
    lambda ab: np.all(np.abs(np.subtract(*np.broadcast_arrays(*ab))) > 1e-3)))
def test_maximum_minimum(ab):
    check(lambda a, b: tg.maximum(a, b) + 2 * tg.minimum(a, b), *ab)


# ----- elementwise unary -------------------------------------------------------------------

@given(tst.arrays(elements=tst.floats(-5, 5)))
def test_exp(x):
    check(lambda a: a.exp(), x)


@given(tst.positive())
def test_log_and_sqrt(x):
    check(lambda a: a.log() + a.sqrt(), x)


@given(tst.away_from([0.0]))
def test_abs(x):
    check(lambda a: a.abs(), x)


@given(tst.arrays())
def test_tanh_sigmoid(x):
    check(lambda a: a.tanh() + a.sigmoid(), x)


@given(tst.away_from([0.0]))
def test_relu_leaky_relu(x):
    check(lambda a: F.relu(a) + F.leaky_relu(a, 0.1), x)


@given(tst.arrays(elements=tst.floats(-6, 6)), st.sampled_from(["none", "tanh"]))
def test_gelu(x, approximate):
    check(lambda a: F.gelu(a, approximate=approximate), x)


@given(tst.arrays())
def test_silu_softplus(x):
    check(lambda a: F.silu(a) + F.softplus(a), x)


@given(tst.away_from([-1.0, 2.0]))
def test_clamp(x):
    check(lambda a: a.clamp(-1.0, 2.0) + a.clamp(min=-1.0) + a.clamp(max=2.0), x)


@given(tst.arrays())
def test_cast(x):
    check(lambda a: a.to("float64") * 2.0, x)


def test_cast_gradient_keeps_the_input_dtype():
    a = leaf([1.0, 2.0])
    (a.float() * 3).sum().backward()
    assert a.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0])


# ----- reductions ----------------------------------------------------------------------------

@given(tst.shapes().flatmap(lambda s: st.tuples(tst.arrays(shape=st.just(s)),
                                                tst.dims(len(s)), st.booleans())))
def test_sum_mean(case):
    x, dim, keepdim = case
    check(lambda a: a.sum(dim, keepdim) + 3 * a.mean(dim, keepdim), x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.arrays(shape=st.just(s)), tst.dims(len(s), allow_none=True), st.booleans())))
def test_var_std(case):
    x, dim, keepdim = case
    axes = range(x.ndim) if dim is None else ([dim] if isinstance(dim, int) else dim)
    n = int(np.prod([x.shape[d] for d in axes]))
    if n < 2:  # var with correction=1 of one element is nan (as in PyTorch); use correction 0
        check(lambda a: a.var(dim, keepdim, correction=0), x)
        return
    check(lambda a: a.var(dim, keepdim) + a.var(dim, keepdim, correction=0), x)
    spread = x.std(axis=tuple(d % x.ndim for d in axes))
    if np.all(spread > 1e-2):  # std' = 1 / (2 std): keep away from 0
        check(lambda a: a.std(dim, keepdim), x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.distinct(st.just(s)), tst.dims(len(s)), st.booleans())))
def test_amax_amin_distinct(case):
    x, dim, keepdim = case
    check(lambda a: a.amax(dim, keepdim) - a.amin(dim, keepdim), x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.distinct(st.just(s)), st.integers(-len(s), len(s) - 1), st.booleans())))
def test_max_min_with_dim(case):
    x, dim, keepdim = case
    check(lambda a: a.max(dim, keepdim).values + a.min(dim, keepdim).values, x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.arrays(shape=st.just(s)), tst.dims(len(s), allow_none=False), st.booleans())))
def test_logsumexp(case):
    x, dim, keepdim = case
    check(lambda a: a.logsumexp(dim, keepdim), x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.arrays(shape=st.just(s)), st.integers(-len(s), len(s) - 1))))
def test_softmax_log_softmax_fused_and_composite(case):
    x, dim = case
    check(lambda a: F.softmax(a, dim) + F.log_softmax(a, dim), x)
    check(lambda a: softmax_composite(a, dim) + log_softmax_composite(a, dim), x)


# ----- matmul --------------------------------------------------------------------------------

@given(tst.matmul_shapes().flatmap(lambda s: st.tuples(tst.arrays(shape=st.just(s[0])),
                                                       tst.arrays(shape=st.just(s[1])))))
def test_matmul(ab):
    check(lambda a, b: a @ b, *ab)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3))
def test_matmul_rows_times_matrix(b, t, c, d, e):
    rng = np.random.default_rng(b * 100 + t * 10 + c)
    check(lambda x, w: x @ w, rng.standard_normal((b, t, e, c)), rng.standard_normal((c, d)))


# ----- shape ops -----------------------------------------------------------------------------

@given(tst.arrays(shape=tst.shapes(min_dims=1)))
def test_reshape_flatten_view(x):
    check(lambda a: a.reshape(-1).reshape(x.shape).flatten() * a.view(x.size).flatten(), x)


@given(tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
    tst.arrays(shape=st.just(s)), st.permutations(list(range(len(s)))))))
def test_permute_transpose(case):
    x, perm = case
    check(lambda a: a.permute(*perm).transpose(0, -1), x)


@given(tst.broadcastable_shapes(2))
def test_expand(shapes):
    target = np.broadcast_shapes(*shapes)
    rng = np.random.default_rng(len(target))
    check(lambda a: a.expand(*target) * 1.5, rng.standard_normal(shapes[0]))


@given(tst.arrays(shape=tst.shapes(min_dims=1)), st.data())
def test_squeeze_unsqueeze(x, data):
    dim = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check(lambda a: a.unsqueeze(dim).squeeze(dim).squeeze() * 2, x)


@given(tst.arrays(shape=st.just((4, 3, 2))), st.data())
def test_getitem_basic_and_advanced(x, data):
    idx = data.draw(tst.indices(4, st.just((5,))))
    check(lambda a: a[1:3, ::2] .sum() + a[idx].sum(-1) .sum() + a[-1, 0], x)
    check(lambda a: a[idx, :, 1] * a[idx, 0, :1], x)
    mask = data.draw(tst.arrays(np.bool_, st.just((4, 3, 2)), st.booleans()))
    check(lambda a: a[mask] * 3, x)


@given(tst.arrays(shape=st.just((3, 4))), st.data())
def test_gather_with_duplicates(x, data):
    dim = data.draw(st.sampled_from([0, 1, -1]))
    size = x.shape[dim]
    idx = data.draw(tst.indices(size, st.just((3, 4) if dim == 0 else (3, 5))))
    if dim == 0:
        idx = idx[:, :4] if idx.shape[1] > 4 else idx
    check(lambda a: a.gather(dim, tg.tensor(idx)), x)


@given(st.lists(tst.arrays(shape=st.just((2, 3))), min_size=1, max_size=3),
       st.integers(-2, 1))
def test_cat_stack(xs, dim):
    check(lambda *ts: tg.cat(ts, dim) * 2, *xs)
    check(lambda *ts: tg.stack(ts, dim) * 2, *xs)


@given(tst.arrays(shape=st.just((5, 4))), st.sampled_from([1, 2, 3, [1, 4], [2, 2, 1]]))
def test_split_chunk(x, sizes):
    dim = 0
    check(lambda a: tg.cat([p * (i + 1) for i, p in enumerate(a.split(sizes, dim))], dim), x)
    check(lambda a: tg.cat([p * (i + 1) for i, p in enumerate(a.chunk(2, 1))], 1), x)


@given(tst.arrays(shape=st.just((3, 4))), tst.arrays(shape=st.just((4,))),
       tst.arrays(np.bool_, st.just((3, 4)), st.booleans()))
def test_where_masked_fill(a, b, cond):
    check(lambda x, y: tg.where(tg.tensor(cond), x, y), a, b)
    check(lambda x: x.masked_fill(tg.tensor(cond[0]), -2.0), a)


def test_deep_chain_composition():
    x = np.linspace(-1, 1, 6).reshape(2, 3)

    def fn(a):
        h = a
        for _ in range(5):
            h = (h @ tg.tensor(np.eye(3) * 0.9)).tanh() + h * 0.1
        return h.sum(0)

    check(fn, x)


@pytest.mark.parametrize("shape", [(3, 200), (40, 40)])
def test_directional_mode_on_larger_inputs(shape):
    rng = np.random.default_rng(0)
    x = leaf(rng.standard_normal(shape))
    assert gradcheck(lambda a: F.softmax(a, -1) * a, [x], mode="directional")
