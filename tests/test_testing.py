"""The public testing tools must catch wrong gradients and their strategies must keep their
promises (a check that cannot fail is worthless)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.autograd import Function
from tinygrad_llm.testing import GradcheckError, gradcheck
from tinygrad_llm.testing import strategies as tst


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong derivative (3x instead of 2x) at one element."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved
        d = 2 * x
        d.reshape(-1)[-1] *= 1.5
        return g * d


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_gradcheck_names_the_input_and_the_worst_index():
    x = leaf(np.linspace(1, 2, 6).reshape(2, 3))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 3\)\) at index \(1, 2\)"):
        gradcheck(lambda a, b: WrongSquare.apply(b) + a, [leaf(np.ones((2, 3))), x])


def test_gradcheck_directional_mode_catches_it_too():
    x = leaf(np.linspace(1, 2, 600))
    with pytest.raises(GradcheckError):
        gradcheck(lambda a: WrongSquare.apply(a), [x], mode="directional")
    assert gradcheck(lambda a: WrongSquare.apply(a), [x], mode="directional",
                     raise_exception=False) is False


def test_gradcheck_refuses_float32_unless_asked():
    x = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * a, [x])
    assert gradcheck(lambda a: a * a, [x], allow_low_precision=True)


def test_gradcheck_rejects_non_finite_inputs_and_no_grad_inputs():
    with pytest.raises(ValueError, match=r"index \(1,\)"):
        gradcheck(lambda a: a * 2, [leaf([1.0, np.nan])])
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda a: a * 2, [tg.tensor([1.0])])


def test_gradcheck_handles_tuple_outputs_and_restores_grads():
    x = leaf([1.0, 2.0])
    x.grad = tg.tensor([9.0, 9.0], dtype="float64")
    assert gradcheck(lambda a: (a * a, a.exp()), [x])
    assert x.grad.tolist() == [9.0, 9.0]


def test_gradcheck_detects_an_input_mutated_by_fn():
    def bad(a):
        a.data[0] += 1.0  # changes its input behind autograd's back
        return a * 2
    with pytest.raises(GradcheckError, match="modified in place"):
        gradcheck(bad, [leaf([1.0, 2.0])])


@given(tst.distinct(tst.shapes(min_dims=1), min_gap=0.01))
def test_distinct_keeps_its_gap(x):
    v = np.sort(x.ravel())
    assert np.all(np.diff(v) >= 0.01 - 1e-12)


@given(tst.away_from([0.0, 1.0], margin=1e-3))
def test_away_from_keeps_its_margin(x):
    assert np.all(np.abs(x) >= 1e-3) and np.all(np.abs(x - 1) >= 1e-3)


@given(tst.indices(5))
def test_indices_repeat_and_stay_in_range(idx):
    assert idx.min() >= 0 and idx.max() < 5
    if idx.size >= 2:
        assert len(np.unique(idx)) < idx.size


@given(tst.logits(masked=True))
def test_masked_logits_keep_a_finite_entry_per_row(x):
    assert np.all(np.isfinite(x[..., 0]))


@given(tst.matmul_shapes())
def test_matmul_shapes_are_valid(shapes):
    a, b = np.zeros(shapes[0]), np.zeros(shapes[1])
    a @ b


@given(st.data())
def test_strided_gives_equal_values(data):
    a = data.draw(tst.arrays(shape=tst.shapes(min_dims=1)))
    s = data.draw(tst.strided(a))
    np.testing.assert_array_equal(a, s)


def test_check_op_names_the_check_that_fails():
    from tinygrad_llm.autograd import Function
    from tinygrad_llm.testing import check_op

    class BadSquare(Function):       # forward right, backward off by a factor of 2
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, g):
            (x,) = self.saved
            return g * x

    x = np.array([0.5, -1.5, 2.0])
    assert check_op(lambda t: t * t, [x], ref=lambda a: a * a, twin=lambda t: t ** 2)
    with pytest.raises(AssertionError, match="reference"):
        check_op(lambda t: t * t, [x], ref=lambda a: a * a + 1)
    with pytest.raises(Exception, match="gradient|gradcheck"):
        check_op(BadSquare.apply, [x])
    with pytest.raises(AssertionError, match="twin"):
        check_op(lambda t: t * t, [x], twin=lambda t: t * 3)
