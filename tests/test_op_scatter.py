"""scatter, scatter_add, scatter_reduce, index_select, masked_select, nonzero, one_hot:
float64 gradchecks (duplicate indices, zeros, ties) and PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity, same_error


@st.composite
def scatter_case(draw, elements=None):
    """(x, dim, index, src): index fits inside x except along dim, src at least index's size."""
    x = draw(tst.arrays(shape=tst.shapes(min_dims=1), elements=elements))
    dim = draw(st.integers(0, x.ndim - 1))
    index_shape = tuple(draw(st.integers(1, n)) if d != dim else draw(st.integers(1, 4))
                        for d, n in enumerate(x.shape))
    index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, x.shape[dim] - 1)))
    src_shape = tuple(n + draw(st.integers(0, 1)) for n in index_shape)
    src = draw(tst.arrays(shape=st.just(src_shape), elements=elements))
    return x, dim, index, src


@given(scatter_case())
def test_scatter_add_grad(case):
    x, dim, index, src = case
    check_grad(lambda a, s: a.scatter_add(dim, tg.tensor(index), s), x, src)


@given(scatter_case(), st.booleans())
def test_scatter_reduce_mean_grad(case, include_self):
    x, dim, index, src = case
    check_grad(lambda a, s: a.scatter_reduce(dim, tg.tensor(index), s, "mean",
                                             include_self=include_self), x, src)


@given(scatter_case(elements=st.sampled_from([0.0, 0.5, -1.5, 2.0])), st.booleans())
def test_scatter_reduce_prod_grad_with_zeros(case, include_self):
    x, dim, index, src = case   # often several zeros per slot: the zero-safe formula
    check_grad(lambda a, s: a.scatter_reduce(dim, tg.tensor(index), s, "prod",
                                             include_self=include_self), x, src)


@given(scatter_case(), st.sampled_from(["amax", "amin"]), st.booleans())
def test_scatter_reduce_amax_grad(case, reduce, include_self):
    x, dim, index, src = case
    x = x + 1e-3 * np.arange(x.size).reshape(x.shape)               # no ties
    src = src + 0.5e-3 + 1e-3 * x.size + 1e-3 * np.arange(src.size).reshape(src.shape)
    check_grad(lambda a, s: a.scatter_reduce(dim, tg.tensor(index), s, reduce,
                                             include_self=include_self), x, src)


@given(scatter_case())
def test_scatter_grad(case):
    x, dim, index, src = case
    # one position per slot (a permutation along dim), so the kept value is well defined
    index = np.argsort(np.random.default_rng(0).random(x.shape), axis=dim)
    index = index[tuple(slice(0, min(n, m)) for n, m in zip(index.shape, src.shape))]
    check_grad(lambda a, s: a.scatter(dim, tg.tensor(index), s), x, src)
    check_grad(lambda a: a.scatter(dim, tg.tensor(index), 2.5), x)


@given(tst.arrays(shape=tst.shapes(min_dims=1)), st.data())
def test_index_select_masked_select_grad(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    idx = data.draw(tst.indices(x.shape[dim], shape=st.just((3,))))
    mask = data.draw(hnp.arrays(bool, x.shape[-1:]))
    check_grad(lambda a: a.index_select(dim, tg.tensor(idx)), x)
    check_grad(lambda a: a.masked_select(tg.tensor(mask)), x)


def test_scatter_reduce_amax_ties_split_the_gradient():
    x = tg.tensor([1.0, 5.0], requires_grad=True)
    src = tg.tensor([2.0, 2.0, 0.0], requires_grad=True)
    out = x.scatter_reduce(0, tg.tensor([0, 0, 1]), src, "amax", include_self=False)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [2.0, 0.0])
    np.testing.assert_array_equal(src.grad.data, [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_bad_input():
    with pytest.raises(IndexError, match="out of bounds"):
        tg.zeros(3).scatter_add(0, tg.tensor([3]), tg.ones(1))
    with pytest.raises(RuntimeError, match="non-negative"):
        ops.one_hot(tg.tensor([0, -1]))
    with pytest.raises(RuntimeError, match="index tensor"):
        ops.one_hot(tg.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="dtype"):
        tg.zeros(3).scatter(0, tg.tensor([0]), tg.ones(1, dtype="float64"))


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_parity_scatter_reduce(reduce, include_self):
    pytest.importorskip("torch")
    x = RNG.integers(-2, 3, (3, 5)).astype(np.float64)      # zeros and ties on purpose
    src = RNG.integers(-2, 3, (2, 4)).astype(np.float64)
    index = RNG.integers(0, 3, (2, 4))
    if not include_self and reduce in ("amax", "amin"):
        # torch counts a tie with the excluded self value in the gradient; keep x apart
        x = x + 10.0 * (1 if reduce == "amin" else -1)
    parity(lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
           lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
           x, src, index)
    ints = RNG.integers(-3, 4, (3, 5))
    parity(lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
           lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
           ints, RNG.integers(-3, 4, (2, 4)), index)


def test_parity_scatter_and_selection():
    pytest.importorskip("torch")
    x = RNG.standard_normal((3, 5))
    index = np.array([[0, 4, 2], [1, 0, 3]])
    src = RNG.standard_normal((2, 3))
    parity(lambda a, s, i: a.scatter(1, i, s), lambda a, s, i: a.scatter(1, i, s),
           x, src, index)
    parity(lambda a, i: a.scatter(1, i, 7.0), lambda a, i: a.scatter(1, i, 7.0), x, index)
    parity(lambda a, s, i: a.scatter_add(1, i, s), lambda a, s, i: a.scatter_add(1, i, s),
           x, src, np.array([[0, 0, 2], [1, 1, 1]]))
    parity(lambda a, s, i: a.scatter(1, i, s, reduce="add"),
           lambda a, s, i: a.scatter(1, i, s, reduce="add"), x, src, index, grad=False)
    parity(lambda a, i: a.index_select(1, i), lambda a, i: a.index_select(1, i),
           x, np.array([4, 0, 4]))
    mask = RNG.random(5) > 0.5
    parity(lambda a, m: a.masked_select(m), lambda a, m: a.masked_select(m), x, mask)


def test_parity_nonzero_one_hot():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    parity(lambda a: a.nonzero(), lambda a: a.nonzero(), x, grad=False)
    parity(lambda a: a.nonzero(as_tuple=True), lambda a: a.nonzero(as_tuple=True), x,
           grad=False)
    parity(lambda a: ops.nonzero(a), lambda a: torch.nonzero(a), np.array(3.0), grad=False)
    labels = np.array([[0, 3], [2, 1]])
    parity(lambda a: ops.one_hot(a), lambda a: F.one_hot(a), labels)
    parity(lambda a: ops.one_hot(a, 6), lambda a: F.one_hot(a, 6), labels)


def test_parity_errors():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    same_error(lambda: ops.one_hot(tg.tensor([0, 5]), 3),
               lambda: F.one_hot(torch.tensor([0, 5]), 3))
    same_error(lambda: ops.one_hot(tg.tensor([0.0])), lambda: F.one_hot(torch.tensor([0.0])))
    int_src, int_src_t = tg.ones(1, 1, dtype="int64"), torch.ones(1, 1, dtype=torch.int64)
    same_error(lambda: tg.zeros(2, 3).scatter_add(0, tg.tensor([[0]]), int_src),
               lambda: torch.zeros(2, 3).scatter_add(0, torch.tensor([[0]]), int_src_t))
    same_error(lambda: tg.zeros(2, 3).index_select(0, tg.tensor([[0]])),
               lambda: torch.zeros(2, 3).index_select(0, torch.tensor([[0]])))


# ----- check_op: the NumPy reference, gradcheck, the composite twin, PyTorch ------------------

def test_check_op_scatter_add_index_select():
    from tinygrad_llm.testing import check_op
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(12)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    index = np.array([[0, 2, 2, 1], [0, 0, 1, 1]])

    def ref(a, s):
        out = a.copy()
        np.add.at(out, (index, np.arange(4)[None, :]), s)
        return out

    check_op(lambda a, s: a.scatter_add(0, tg.tensor(index), s), [x, src], ref=ref,
             twin=lambda a, s: a + ops.one_hot(tg.tensor(index), 3).permute(2, 0, 1)
             .to(a.dtype).mul(s).sum(1),                  # sum_j [index_jk == i] s_jk
             torch_fn=torch and (lambda a, s: a.scatter_add(0, torch.tensor(index), s)))
    check_op(lambda a: a.index_select(1, tg.tensor([3, 0, 3])), [x],
             ref=lambda a: a[:, [3, 0, 3]], twin=lambda a: a[:, [3, 0, 3]],
             torch_fn=torch and (lambda a: a.index_select(1, torch.tensor([3, 0, 3]))))
