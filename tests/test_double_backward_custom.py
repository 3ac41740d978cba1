"""Gradients of gradients through torch-style custom Functions (custom_function.py), float64.

With create_graph=True the user's backward runs with grad mode on, on Tensors with a graph: a
backward written with differentiable ops is differentiated again (saved inputs and saved
outputs both carry their graph), as in PyTorch; @once_differentiable raises on the second
derivative. Each case is checked against finite differences of the gradient and, where torch
is installed, against the same Function written for torch."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
from second_order_checks import check_second_order, leaf
from tinygrad_llm.autograd import grad
from tinygrad_llm.custom_function import once_differentiable
from tinygrad_llm.testing import strategies as tst


def make_functions(base, once=lambda f: f):
    """The same custom Functions for tinygrad_llm (base = tg.autograd.Function) or torch."""

    class Exp(base):                       # saves its output
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    class MulAdd(base):                    # saves inputs; two outputs: (x * w, x + w)
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * w, x + w

        @staticmethod
        def backward(ctx, g_prod, g_sum):
            x, w = ctx.saved_tensors
            return g_prod * w + g_sum, (g_prod * x + g_sum).sum(0)   # w broadcast over rows

    class ExpPair(base):                   # two outputs, both saved: (e^x, e^2x)
        @staticmethod
        def forward(ctx, x):
            a = x.exp()
            b = a * a
            ctx.save_for_backward(a, b)
            return a, b

        @staticmethod
        def backward(ctx, g_a, g_b):
            a, b = ctx.saved_tensors
            return g_a * a + 2 * g_b * b

    class Square(base):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    return Exp, MulAdd, ExpPair, Square


Exp, MulAdd, ExpPair, Square = make_functions(tg.autograd.Function, once_differentiable)
Exp2, MulAdd2, ExpPair2, Square2 = make_functions(tg.autograd.Function)

SMALL = settings(max_examples=10, deadline=None)


@SMALL
@given(tst.arrays(shape=tst.shapes(max_dims=2), elements=tst.floats(-2, 2)))
def test_saved_output_gives_the_second_derivative(x):
    h = check_second_order(lambda t: Exp.apply(t) * Exp.apply(t * 0.5), x)
    assert np.all(np.isfinite(h[0]))


@SMALL
@given(st.data())
def test_multi_output_function_with_broadcast_gradient(data):
    rows, cols = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    x = data.draw(tst.arrays(shape=st.just((rows, cols)), elements=tst.floats(-2, 2)))
    w = data.draw(tst.arrays(shape=st.just((cols,)), elements=tst.floats(-2, 2)))

    def fn(a, b):
        p, s = MulAdd.apply(a, b)
        return p * s * p
    check_second_order(fn, x, w)


def test_saved_outputs_of_a_packed_node_carry_their_graph():
    x = np.array([0.3, -1.1, 0.8])
    check_second_order(lambda t: ExpPair.apply(t)[1], x)
    check_second_order(lambda t: tg.stack(list(ExpPair.apply(t))), x)
    t = leaf(x)
    s, c = ExpPair.apply(t)
    g, = grad((s + c).sum(), t, create_graph=True)
    h, = grad(g.sum(), t)
    np.testing.assert_allclose(h.data, np.exp(x) + 4 * np.exp(2 * x), rtol=1e-12)


def test_once_differentiable_raises_on_the_second_derivative():
    t = leaf([0.5, -2.0])
    g, = grad(Square.apply(t).sum(), t)                            # first order works
    np.testing.assert_allclose(g.data, [1.0, -4.0])
    g, = grad((Square.apply(t) * t).sum(), t, create_graph=True)   # recorded: still fine
    np.testing.assert_allclose(g.data, 3 * t.data ** 2)
    with pytest.raises(RuntimeError, match="once_differentiable.*Square"):
        grad(g.sum(), t)
    h, = grad(grad(Square2.apply(t).sum(), t, create_graph=True)[0].sum(), t)
    np.testing.assert_allclose(h.data, [2.0, 2.0])                # without the decorator


def test_matches_torch_custom_functions():
    torch = pytest.importorskip("torch")
    TExp, TMulAdd, TExpPair, TSquare = make_functions(torch.autograd.Function)
    rng = np.random.default_rng(0)
    x_np, w_np, v_np = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, 3), rng.normal(size=(2, 3))

    def second(fn, x, w, g, ones):
        y = fn(x, w)
        dx, dw = g(y.sum(), [x, w], create_graph=True)
        return g((dx * ones(v_np)).sum() + (dw * dw).sum(), [x, w])

    def ours(a, b):
        p, s = MulAdd2.apply(a, b)
        c = ExpPair2.apply(a)[1]
        return Exp2.apply(p) * s + Square2.apply(c) * Exp2.apply(b)

    def theirs(a, b):
        p, s = TMulAdd.apply(a, b)
        c = TExpPair.apply(a)[1]
        return TExp.apply(p) * s + TSquare.apply(c) * TExp.apply(b)

    mine = second(ours, leaf(x_np), leaf(w_np), grad, tg.tensor)
    ref = second(theirs, torch.tensor(x_np, requires_grad=True),
                 torch.tensor(w_np, requires_grad=True), torch.autograd.grad, torch.tensor)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-12)


def test_a_saved_intermediate_is_a_constant_as_in_torch():
    """A tensor made inside forward (neither input nor output) has no graph: in the second
    derivative it is a constant, in PyTorch too."""
    torch = pytest.importorskip("torch")

    def make(base):
        class Scaled(base):
            @staticmethod
            def forward(ctx, x):
                k = x * x                      # an intermediate
                ctx.save_for_backward(x, k)
                return x * k

            @staticmethod
            def backward(ctx, g):
                x, k = ctx.saved_tensors
                return 3 * g * k
        return Scaled
    x_np = np.array([0.5, -1.5])
    t = leaf(x_np)
    g, = grad(make(tg.autograd.Function).apply(t).sum(), t, create_graph=True)
    tt = torch.tensor(x_np, requires_grad=True)
    tgr, = torch.autograd.grad(make(torch.autograd.Function).apply(tt).sum(), tt,
                               create_graph=True)
    np.testing.assert_allclose(g.data, tgr.detach().numpy())
    assert not g.requires_grad and not tgr.requires_grad


class Tanh(tg.autograd.Function):
    """The newer form: forward without ctx, setup_context saves the output."""

    @staticmethod
    def forward(x):
        return x.tanh()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


def test_setup_context_form_and_a_third_derivative():
    x = np.array([0.4, -0.9, 1.3])
    check_second_order(lambda t: Tanh.apply(t) * t, x)
    t = leaf(x)
    g1, = grad(Tanh.apply(t).sum(), t, create_graph=True)
    g2, = grad(g1.sum(), t, create_graph=True)
    g3, = grad(g2.sum(), t)
    y = np.tanh(x)                        # tanh''' = -2 (1 - y^2)(1 - 3 y^2)
    np.testing.assert_allclose(g2.data, -2 * y * (1 - y * y), rtol=1e-12)
    np.testing.assert_allclose(g3.data, -2 * (1 - y * y) * (1 - 3 * y * y), rtol=1e-12)
