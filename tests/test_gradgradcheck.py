"""gradgradcheck and the derivative properties pass on correct second derivatives and FAIL on
deliberately wrong ones (a check that cannot fail is not a check).

The wrong ones are library-style Functions whose first derivative is right (gradcheck passes)
and whose backward is itself a Function with a chosen, possibly wrong, backward:

    y = 1/2 x^T S x        dy/dx = g S x        (QuadraticGrad.forward, right)
    d<gg, g S x>/dx = g S^T gg   -> claimed as g M^T gg  (wrong when M != S)
    d<gg, g S x>/dg = <gg, S x>  -> claimed as scale * <gg, S x>  (wrong when scale != 1)
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
from tinygrad_llm.autograd import Function
from tinygrad_llm.tensor import Tensor
from tinygrad_llm.testing import (GradgradcheckError, check_hessian_symmetric,
                                  check_hvp_matches_finite_differences, check_jvp_vjp_adjoint,
                                  gradcheck, gradgradcheck)
from tinygrad_llm.testing import strategies as tst

S = np.array([[2.0, 0.5, -0.3], [0.5, 1.0, 0.8], [-0.3, 0.8, 3.0]])


def t(a, requires_grad=True):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


class QuadraticGrad(Function):
    """(x, g) -> g S x, with the claimed second derivatives M (for x) and scale (for g)."""

    def forward(self, x, g, S, M, scale):
        self.S, self.M, self.scale = S, M, scale
        self.save_for_backward(x, g)
        return g * (S @ x)

    def backward(self, gg):
        x, g = self.saved
        dx = g * (gg @ self.M)                          # g M^T gg
        dg = (gg * (x @ self.S)).sum() * self.scale     # <gg, S x> (S symmetric)
        if not isinstance(gg, Tensor):
            dg = np.asarray(dg)
        return dx, dg


class Quadratic(Function):
    """y = 1/2 x^T S x; its backward is QuadraticGrad, so it is differentiable twice."""

    def forward(self, x, S, M, scale):
        self.S, self.M, self.scale = S, M, scale
        self.save_for_backward(x)
        return np.asarray(0.5 * x @ S @ x)

    def backward(self, g):
        (x,) = self.saved
        out = QuadraticGrad.apply(x, g, self.S, self.M, self.scale)
        return out if isinstance(g, Tensor) else out.data


def quadratic(S=S, M=None, scale=1.0):
    """x -> 1/2 x^T S x with the claimed second derivative M (S when None)."""
    return lambda x: Quadratic.apply(x, S=S, M=S if M is None else M, scale=scale)


ASYMMETRIC = S + np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
x0 = np.array([0.4, -1.1, 0.7])


# ----- the fixture is right where it should be -------------------------------------------------

def test_the_right_quadratic_passes_every_check():
    assert gradcheck(quadratic(), [t(x0)])
    assert gradgradcheck(quadratic(), [t(x0)])
    assert check_hessian_symmetric(quadratic(), x0)
    assert check_hvp_matches_finite_differences(quadratic(), x0, np.ones(3))
    assert check_jvp_vjp_adjoint(quadratic(), x0, np.array(1.3), np.array([1.0, -2.0, 0.5]))


# ----- ... and each check catches its wrong version ----------------------------------------------

def test_gradgradcheck_fails_on_a_wrong_second_derivative_that_gradcheck_accepts():
    wrong = quadratic(M=2 * S)
    assert gradcheck(wrong, [t(x0)])            # the first derivative is right
    with pytest.raises(GradgradcheckError, match=r"input 0 \(shape \(3,\)\) at index"):
        gradgradcheck(wrong, [t(x0)])
    assert gradgradcheck(wrong, [t(x0)], raise_exception=False) is False


def test_gradgradcheck_fails_when_the_backward_depends_wrongly_on_the_upstream_gradient():
    with pytest.raises(GradgradcheckError, match="grad_output 0"):
        gradgradcheck(quadratic(scale=2.0), [t(x0)])


def test_gradgradcheck_directional_mode_fails_too():
    big = np.linspace(-1, 1, 90)                 # 90 + 1 numbers: random directions
    D = np.diag(np.linspace(1, 2, 90))
    assert gradgradcheck(quadratic(S=D), [t(big)])
    with pytest.raises(GradgradcheckError, match="index"):   # localized after the failure
        gradgradcheck(quadratic(S=D, M=1.1 * D), [t(big)])


def test_gradgradcheck_names_a_backward_that_returns_a_constant():
    class CubeConstant(Function):
        """y = x^3 whose backward drops the graph: g * 3 x^2 with x taken as a constant."""

        def forward(self, x):
            self.save_for_backward(x)
            return x ** 3

        def backward(self, g):
            (x,) = self.saved
            x = x.data if isinstance(x, Tensor) else x
            return g * (3 * x ** 2)

    cube = lambda x: CubeConstant.apply(x)  # noqa: E731
    assert gradcheck(cube, [t(x0)])
    with pytest.raises(GradgradcheckError, match="input 0"):
        gradgradcheck(cube, [t(x0)])


def make_torch_style_cube(detach_one_factor):
    class Cube(tg.autograd.Function):
        """y = x^3 written PyTorch's way; dy/dx = 3 x x, with one factor detached or not."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            other = x.detach() if detach_one_factor else x   # right value, wrong graph
            return g * 3 * x * other
    return Cube.apply


def test_gradgradcheck_on_torch_style_custom_functions():
    right, wrong = make_torch_style_cube(False), make_torch_style_cube(True)
    assert gradgradcheck(right, [t(x0)])
    assert gradcheck(wrong, [t(x0)])
    with pytest.raises(GradgradcheckError, match=r"input 0 .* \(vjp of the vjp\)"):
        gradgradcheck(wrong, [t(x0)])


def test_hessian_symmetry_check_fails_on_an_asymmetric_second_derivative():
    with pytest.raises(AssertionError, match="not symmetric"):
        check_hessian_symmetric(quadratic(M=ASYMMETRIC), x0)


def test_hvp_check_fails_on_a_wrong_second_derivative():
    with pytest.raises(AssertionError, match="finite differences"):
        check_hvp_matches_finite_differences(quadratic(M=2 * S), x0, np.ones(3))


def test_adjoint_check_fails_when_jvp_and_vjp_disagree():
    with pytest.raises(AssertionError, match="disagree"):
        check_jvp_vjp_adjoint(quadratic(scale=2.0), x0, np.array(1.3), np.ones(3))


# ----- gradgradcheck passes on correct compositions, under hypothesis -------------------------

def composite(a, b):
    z = a @ b                                                  # (2, 4)
    return (z.tanh() * (a.sum() / 3).exp()) ** 2 / (1 + (b * b).sum()), (a - b.sum()) ** 3


@given(hnp.arrays(np.float64, (2, 3), elements=st.floats(-1, 1)),
       hnp.arrays(np.float64, (3, 4), elements=st.floats(-1, 1)))
@settings(max_examples=10)
def test_gradgradcheck_passes_on_a_composite_of_safe_ops(a, b):
    assert gradgradcheck(composite, [t(a), t(b)])       # 18 + 14 numbers: elementwise


@given(hnp.arrays(np.float64, (6, 12), elements=st.floats(-1, 1)))
@settings(max_examples=5)
def test_gradgradcheck_directional_passes_on_a_large_input(a):
    m = t(np.linspace(-1, 1, 12 * 5).reshape(12, 5) / 3, requires_grad=False)
    assert gradgradcheck(lambda x: (x @ m).tanh() * x.sum(), [t(a)])   # 72 + 30 numbers


def test_gradgradcheck_leaves_inputs_alone_and_refuses_float32():
    x = t(x0)
    gradgradcheck(lambda a: (a ** 3).sum(), [x])
    np.testing.assert_array_equal(x.numpy() if not x.requires_grad else x.detach().numpy(), x0)
    assert x.grad is None
    with pytest.raises(TypeError, match="float64"):
        gradgradcheck(lambda a: a * a, [tg.tensor(np.ones(3, np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match="requires grad"):
        gradgradcheck(lambda a: a * a, [t(x0, requires_grad=False)])


@given(tst.broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
@settings(max_examples=10)
def test_gradgradcheck_passes_on_broadcasting_products(shapes, data):
    a, b = (data.draw(tst.arrays(shape=s, elements=tst.floats(-1, 1))) for s in shapes)
    assert gradgradcheck(lambda x, y: (x * y).tanh() * x / (1 + y * y), [t(a), t(b)])
