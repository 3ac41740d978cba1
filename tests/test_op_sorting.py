"""sort, argsort, topk, kthvalue, msort: gradchecks on distinct values and PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity, same_error


@st.composite
def distinct_and_dim(draw):
    x = draw(tst.distinct(shape=tst.shapes(min_dims=1)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@given(distinct_and_dim(), st.booleans())
def test_sort_grad(xd, descending):
    x, dim = xd
    check_grad(lambda a: a.sort(dim, descending=descending).values, x)


@given(distinct_and_dim(), st.data())
def test_topk_grad(xd, data):
    x, dim = xd
    k = data.draw(st.integers(0, x.shape[dim]))
    largest = data.draw(st.booleans())
    check_grad(lambda a: a.topk(k, dim, largest=largest).values, x)


@given(distinct_and_dim(), st.data())
def test_kthvalue_grad(xd, data):
    x, dim = xd
    k = data.draw(st.integers(1, x.shape[dim]))
    check_grad(lambda a: a.kthvalue(k, dim).values, x)


@given(tst.arrays(shape=tst.shapes(min_dims=1), elements=st.sampled_from([0.0, 1.0, 2.0])))
def test_sort_is_stable_in_both_directions(x):
    for descending in (False, True):
        idx = tg.tensor(x).argsort(-1, descending=descending).data
        expected = np.argsort(-x if descending else x, axis=-1, kind="stable")
        np.testing.assert_array_equal(idx, expected)


def test_topk_k_out_of_range():
    with pytest.raises(RuntimeError, match="k out of range"):
        tg.tensor([1.0, 2.0]).topk(3)


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(1)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, -1])
def test_parity_sort(dim, descending):
    torch = pytest.importorskip("torch")
    x = RNG.permutation(12).reshape(3, 4) * 0.5
    parity(lambda a: a.sort(dim, descending=descending),
           lambda a: torch.sort(a, dim, descending=descending), x)
    parity(lambda a: a.argsort(dim, descending=descending),
           lambda a: torch.argsort(a, dim, descending=descending), x)


def test_parity_sort_nan_and_ties():
    torch = pytest.importorskip("torch")
    x = np.array([2.0, np.nan, 1.0, 2.0, -np.inf, np.inf, 1.0])
    for descending in (False, True):
        parity(lambda a: a.sort(descending=descending),
               lambda a: torch.sort(a, descending=descending, stable=True), x, grad=False)


@pytest.mark.parametrize("largest", [True, False])
def test_parity_topk(largest):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 6))
    parity(lambda a: a.topk(3, dim=1, largest=largest),
           lambda a: torch.topk(a, 3, dim=1, largest=largest), x)
    parity(lambda a: a.topk(2, 0, largest=largest), lambda a: a.topk(2, 0, largest=largest), x)


def test_parity_kthvalue_and_int_dtypes():
    pytest.importorskip("torch")
    x = RNG.standard_normal((3, 5))
    parity(lambda a: a.kthvalue(2, 1, keepdim=True), lambda a: a.kthvalue(2, 1, keepdim=True),
           x)
    ints = RNG.permutation(10).reshape(2, 5)
    parity(lambda a: a.sort(1), lambda a: a.sort(1), ints)
    parity(lambda a: a.topk(2), lambda a: a.topk(2), ints)


def test_parity_errors():
    torch = pytest.importorskip("torch")
    same_error(lambda: tg.tensor([1.0, 2.0]).topk(3), lambda: torch.tensor([1.0, 2.0]).topk(3))
    same_error(lambda: tg.tensor([1.0, 2.0]).sort(2), lambda: torch.tensor([1.0, 2.0]).sort(2))
    same_error(lambda: tg.tensor([1.0]).kthvalue(2), lambda: torch.tensor([1.0]).kthvalue(2))


def test_check_op_sort_topk():
    from tinygrad_llm.testing import check_op
    try:
        import torch
    except ImportError:
        torch = None
    x = np.random.default_rng(10).permutation(12).reshape(3, 4) * 0.25
    check_op(lambda a: a.sort(1, descending=True).values, [x], ref=lambda a: -np.sort(-a, 1),
             torch_fn=torch and (lambda a: torch.sort(a, 1, descending=True).values))
    check_op(lambda a: a.topk(2, 0).values, [x], ref=lambda a: -np.sort(-a, 0)[:2],
             twin=lambda a: a.sort(0, descending=True).values[:2],
             torch_fn=torch and (lambda a: torch.topk(a, 2, 0).values))
