"""Second derivatives through indexing, gather, cat and the scatter family (create_graph=True).

Their backwards scatter the gradient back to where values came from; under create_graph that
scatter is the ScatterBack Function, whose own backward is the gather again. gradgradcheck
checks it alone and inside x -> op(x)^2 (tests/second_order_checks.py); scatter_reduce's prod
and amax/amin are checked directly; PyTorch parity of the Hessian-vector product on fixed
cases.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
from tinygrad_llm import functional as F
from tinygrad_llm import ops
from tinygrad_llm.autograd import grad
from tinygrad_llm.ops.indexing import ScatterBack, _integers_first
from tinygrad_llm.testing import gradgradcheck
from tinygrad_llm.testing import strategies as tst
from second_order_checks import check_linear_op, leaf, squared, torch_parity

SMALL = settings(max_examples=10, deadline=None)


def arrays(min_dims=1, max_dims=3, max_side=3):
    return tst.arrays(shape=tst.shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side))


@SMALL
@given(arrays(min_dims=2), st.data())
def test_scatter_back(x, data):
    """ScatterBack alone (the recorded gradient of x[index]): dx = zeros, dx[index] += g,
    linear in g with the gather g'[index] as its backward; repeated rows add up, and an int
    mixed with an index array selects first (the ``split`` GetItem hands it)."""
    rows = data.draw(tst.indices(x.shape[0], shape=st.just((3,))))
    cols = data.draw(tst.indices(x.shape[-1], shape=st.just((2,))))
    j = data.draw(st.integers(-x.shape[0], x.shape[0] - 1))
    for index, advanced in [((slice(1, None), None, Ellipsis, slice(None, None, -1)), False),
                            (rows, True), ((j, Ellipsis, cols), True)]:
        split = _integers_first(index) if advanced else None
        g = data.draw(tst.arrays(shape=st.just(tg.tensor(x)[index].shape)))
        check_linear_op(lambda t: ScatterBack.apply(t, x.shape, index, advanced, split), g)


@SMALL
@given(arrays(min_dims=2), st.data())
def test_getitem(x, data):
    rows = data.draw(tst.indices(x.shape[0], shape=st.just((3,))))   # a repeated row
    cols = data.draw(tst.indices(x.shape[-1], shape=st.just((2,))))
    j = data.draw(st.integers(-x.shape[0], x.shape[0] - 1))
    check_linear_op(lambda a: a[1:, None, ..., ::-1], x)            # basic: a view
    check_linear_op(lambda a: a[rows], x)                           # duplicates add up
    check_linear_op(lambda a: a[j, ..., cols], x)                   # the int selects first
    check_linear_op(lambda a: a[x > 0], x)                          # a boolean mask


@SMALL
@given(arrays(), st.data())
def test_narrow_split_chunk(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[dim]
    start = data.draw(st.integers(0, n - 1))
    check_linear_op(lambda a: ops.narrow(a, dim, start, n - start), x)
    size = data.draw(st.integers(1, n))
    check_linear_op(lambda a: ops.split(a, size, dim), x)
    check_linear_op(lambda a: ops.chunk(a, 2, dim), x)


@SMALL
@given(st.lists(arrays(min_dims=1, max_dims=1, max_side=3), min_size=1, max_size=3),
       st.integers(-2, 1))
def test_cat_stack(vectors, dim):
    check_linear_op(lambda *ts: ops.cat(ts, 0), *vectors)
    same = [v[:1] for v in vectors]                                 # equal shapes for stack
    check_linear_op(lambda *ts: ops.stack([t.reshape(1, 1) for t in ts], dim), *same)


@SMALL
@given(arrays(min_dims=1), st.data())
def test_gather_index_select(x, data):
    dim = data.draw(st.integers(0, x.ndim - 1))
    shape = tuple(data.draw(st.integers(1, n)) for n in x.shape)
    index = data.draw(tst.indices(x.shape[dim], shape=st.just(shape)))
    check_linear_op(lambda a: ops.gather(a, dim, tg.tensor(index)), x)
    check_linear_op(lambda a: ops.index_select(a, dim, tg.tensor(index.reshape(-1))), x)
    mask = data.draw(hnp.arrays(bool, x.shape[-1:]))
    check_linear_op(lambda a: ops.masked_select(a, tg.tensor(mask)), x)


@SMALL
@given(arrays(min_dims=2, max_dims=2, max_side=4), st.data())
def test_embedding(w, data):
    ids = data.draw(tst.indices(w.shape[0], shape=tst.shapes(min_dims=1, max_dims=2)))
    padding_idx = data.draw(st.none() | st.integers(0, w.shape[0] - 1))
    check_linear_op(lambda weight: F.embedding(tg.tensor(ids), weight, padding_idx), w)


# ----- scatter family ------------------------------------------------------------------------

@st.composite
def scatter_case(draw):
    """(x, dim, index, src) with pairwise distinct values (no ties for amax/amin)."""
    x_shape = draw(tst.shapes(min_dims=1, max_dims=2, max_side=3))
    dim = draw(st.integers(0, len(x_shape) - 1))
    index_shape = tuple(draw(st.integers(1, n)) if d != dim else draw(st.integers(1, 3))
                        for d, n in enumerate(x_shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, x_shape[dim] - 1)))
    src_shape = tuple(n + draw(st.integers(0, 1)) for n in index_shape)
    n_x = int(np.prod(x_shape))
    values = draw(tst.distinct(shape=st.just((n_x + int(np.prod(src_shape)),)), min_gap=0.1))
    return values[:n_x].reshape(x_shape), dim, index, values[n_x:].reshape(src_shape)


@SMALL
@given(scatter_case(), st.booleans())
def test_scatter_add_mean(case, include_self):
    x, dim, index, src = case
    idx = tg.tensor(index)
    check_linear_op(lambda a, s: a.scatter_add(dim, idx, s), x, src)
    check_linear_op(lambda a, s: a.scatter_reduce(dim, idx, s, "mean",
                                                  include_self=include_self), x, src)


@SMALL
@given(scatter_case())
def test_scatter(case):
    x, dim, index, src = case
    # one position per slot (a permutation along dim), so the kept value is well defined
    perm = np.argsort(np.random.default_rng(index.size).random(x.shape), axis=dim)
    index = perm[tuple(slice(0, min(n, m)) for n, m in zip(perm.shape, index.shape))]
    check_linear_op(lambda a, s: a.scatter(dim, tg.tensor(index), s), x, src)
    check_linear_op(lambda a: a.scatter(dim, tg.tensor(index), 2.5), x)


@SMALL
@given(scatter_case(), st.sampled_from(["prod", "amax", "amin"]), st.booleans())
def test_scatter_reduce_nonlinear(case, reduce, include_self):
    x, dim, index, src = case                      # distinct values: no zero, no ties
    x, src = (np.where(v >= 0, v + 0.5, v - 0.5) for v in (x, src))  # away from 0 too

    def fn(a, s):
        return a.scatter_reduce(dim, tg.tensor(index), s, reduce, include_self=include_self)
    assert gradgradcheck(fn, [leaf(x), leaf(src)])


def test_scatter_reduce_prod_with_a_zero_refuses_create_graph():
    x, src = leaf([[1.0, 0.0, 2.0]]), leaf([[3.0, 4.0]])
    y = x.scatter_reduce(1, tg.tensor([[1, 2]]), src, "prod")
    (g,) = grad(y.sum(), x, retain_graph=True)                      # first order works
    np.testing.assert_allclose(g.numpy(), [[1.0, 3.0, 4.0]])     # d(x_i s_j)/dx_i = s_j
    with pytest.raises(RuntimeError, match="prod.*cannot be differentiated twice"):
        grad(y.sum(), x, create_graph=True)


@pytest.mark.parametrize("pick", [
    lambda a: a[[2, 0, 2, 2]],
    lambda a: ops.gather(a, 0, tg.tensor([2, 0, 2, 2])),
    lambda a: F.embedding(tg.tensor([[2, 0], [2, 2]]), a.reshape(3, 1))],
    ids=["getitem", "gather", "embedding"])
def test_third_derivative_through_scatter_back(pick):
    """y = sum_i x[idx_i]^3: d/dx_j = 3 c_j x_j^2, then 6 c_j x_j, then 6 c_j (c_j = the count
    of j in idx): the gather, its ScatterBack adjoint and the gather again, each recorded."""
    v, counts = np.array([1.5, -0.5, 2.0]), np.array([1.0, 0.0, 3.0])
    x = leaf(v)
    (g1,) = grad((pick(x) ** 3).sum(), x, create_graph=True)
    (g2,) = grad(g1.sum(), x, create_graph=True)
    (g3,) = grad(g2.sum(), x)
    np.testing.assert_allclose(g1.detach().numpy(), 3 * counts * v ** 2)
    np.testing.assert_allclose(g2.detach().numpy(), 6 * counts * v)
    np.testing.assert_allclose(g3.numpy(), 6 * counts)


# ----- PyTorch parity of the Hessian-vector product ------------------------------------------

X = np.random.default_rng(5).standard_normal((3, 4))


def test_torch_parity_indexing():
    torch = pytest.importorskip("torch")
    rows, cols = [2, 0, 2], [[1, 1], [0, 3], [2, 2]]
    tidx, ridx = tg.tensor(cols), torch.tensor(cols)
    for ours, theirs in [
            (lambda a: a[rows, 1:], lambda a: a[rows, 1:]),
            (lambda a: a[1, rows], lambda a: a[1, rows]),
            (lambda a: ops.gather(a, 1, tidx), lambda a: torch.gather(a, 1, ridx)),
            (lambda a: ops.cat(ops.chunk(a, 2, 1)[::-1], 0),
             lambda a: torch.cat(torch.chunk(a, 2, 1)[::-1], 0)),
            (lambda a: F.embedding(tg.tensor([[0, 2, 0]]), a, padding_idx=2),
             lambda a: torch.nn.functional.embedding(torch.tensor([[0, 2, 0]]), a,
                                                     padding_idx=2))]:
        torch_parity(squared(ours), squared(theirs), X)


def test_torch_parity_scatter():
    torch = pytest.importorskip("torch")
    src = np.random.default_rng(6).standard_normal((2, 4)) + 3.0
    index = [[0, 2, 2, 1], [1, 1, 0, 0]]
    for reduce in ("sum", "mean", "prod", "amax"):
        torch_parity(squared(lambda a, s: a.scatter_reduce(0, tg.tensor(index), s, reduce)),
                     squared(lambda a, s: a.scatter_reduce(0, torch.tensor(index), s, reduce)),
                     X + 3.0, src)
