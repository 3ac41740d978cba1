"""Second derivatives of the products (ops/matmul.py, ops/einsum.py): gradgradcheck in float64
under hypothesis over NumPy's 1-D conventions, broadcast batch axes (size 1 included), linear
with and without bias, and einsum equations with sums, outer products, ellipses and diagonals;
parity with torch.autograd.grad(create_graph=True) twice.

A product is bilinear: d2/dA2 = 0, but the mixed derivative d2/dA dB and the derivative of the
backward pass with respect to the upstream gradient are not, and both are checked.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst

from second_order_checks import check_second_order, torch_parity

SETTINGS = settings(max_examples=12, deadline=None)
sides = st.integers(1, 3)


def _array(draw, shape):
    return draw(hnp.arrays(np.float64, shape, elements=tst.floats(-2, 2)))


@st.composite
def matmul_operands(draw):
    """(a, b) for a @ b: 1-D or 2-D or batched, with batch axes that broadcast."""
    n, k, m = draw(sides), draw(sides), draw(sides)
    batch_a, batch_b = draw(tst.broadcastable_shapes(2, max_dims=2, max_side=2))
    shape_a = draw(st.sampled_from([(k,), (n, k), batch_a + (n, k)]))
    shape_b = draw(st.sampled_from([(k,), (k, m), batch_b + (k, m)]))
    return _array(draw, shape_a), _array(draw, shape_b)


@SETTINGS
@given(matmul_operands())
def test_matmul_gradgrad(ab):
    check_second_order(lambda a, b: a @ b, *ab)


@SETTINGS
@given(st.data(), sides, sides, st.booleans())
def test_linear_gradgrad(data, n_in, n_out, with_bias):
    batch = data.draw(tst.shapes(min_dims=0, max_dims=2, max_side=2))
    x = _array(data.draw, batch + (n_in,))
    w = _array(data.draw, (n_out, n_in))
    if with_bias:
        check_second_order(lambda x, w, b: ops.linear(x, w, b) * x.sum(),
                       x, w, _array(data.draw, (n_out,)))
    else:
        check_second_order(lambda x, w: ops.linear(x, w), x, w)


EQUATIONS = {
    "ij,jk->ik": ["ij", "jk"], "i,i->": ["i", "i"], "i,j->ij": ["i", "j"],
    "ij->": ["ij"], "ij->j": ["ij"], "ij,jk": ["ij", "jk"], "bij,bjk->bik": ["bij", "bjk"],
    "ii->i": ["ii"], "ii->": ["ii"], "iij,j->ij": ["iij", "j"], "ii,i->i": ["ii", "i"],
}


@pytest.mark.parametrize("equation", sorted(EQUATIONS))
def test_einsum_gradgrad(equation):
    @SETTINGS
    @given(st.data())
    def check(data):
        sizes = {c: data.draw(sides, label=c) for c in "bijk"}
        arrays = [_array(data.draw, tuple(sizes[c] for c in s)) for s in EQUATIONS[equation]]
        check_second_order(lambda *xs: ops.einsum(equation, *xs), *arrays)

    check()


@SETTINGS
@given(tst.broadcastable_shapes(2, max_dims=2, max_side=2), sides, sides, st.data())
def test_einsum_ellipsis_broadcast_gradgrad(batches, n, k, data):
    a = _array(data.draw, batches[0] + (n, k))
    b = _array(data.draw, batches[1] + (k, n))
    check_second_order(lambda a, b: ops.einsum("...ij,...jk->...ik", a, b), a, b)


@pytest.mark.parametrize("case", ["matmul_batched", "matmul_vector", "linear", "einsum_diag",
                                  "einsum_ellipsis"])
def test_second_derivatives_match_torch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    r = rng.standard_normal
    cases = {
        "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, r((2, 1, 2, 3)), r((4, 3, 2))),
        "matmul_vector": (lambda a, b: (a @ b) * (a @ b), lambda a, b: (a @ b) * (a @ b),
                          r(3), r((2, 3, 4))),
        "linear": (lambda x, w, b: ops.linear(x, w, b) ** 2, lambda x, w, b: F.linear(x, w, b) ** 2,
                   r((2, 2, 3)), r((4, 3)), r(4)),
        "einsum_diag": (lambda a, b: ops.einsum("iij,j->ij", a, b) ** 2,
                        lambda a, b: torch.einsum("iij,j->ij", a, b) ** 2, r((3, 3, 2)), r(2)),
        "einsum_ellipsis": (lambda a, b: ops.einsum("...ij,...jk->...ik", a, b),
                            lambda a, b: torch.einsum("...ij,...jk->...ik", a, b),
                            r((1, 2, 3)), r((4, 3, 2))),
    }
    ours, theirs, *arrays = cases[case]
    torch_parity(ours, theirs, *arrays)
