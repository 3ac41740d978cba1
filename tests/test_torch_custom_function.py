"""torch-style custom Functions (custom_function.py): forward(ctx, ...)/backward(ctx, ...) over
Tensors, the ctx API, several outputs, the errors torch raises, and parity with
torch.autograd.Function on the same classes.

Until autograd.Function.apply hands static-forward subclasses to custom_function (the change
is the lead's), the classes here subclass custom_function.Function; the test
``test_autograd_function_name_serves_both_kinds`` checks the final name."""
import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import custom_function
from tinygrad_llm.testing import gradcheck

BASE = custom_function.Function


def make_functions(base):
    """The same custom Functions for any library's Function base (ours or torch's)."""

    class Exp(base):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)                # an output
            return y

        @staticmethod
        def backward(ctx, grad_output):
            y, = ctx.saved_tensors
            return grad_output * y

    class Legendre3(base):                          # the PyTorch tutorial's P3
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)                # an input
            return 0.5 * (5 * x ** 3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * x ** 2 - 1)

    class ScaledMul(base):                          # tensors, a number, needs_input_grad
        @staticmethod
        def forward(ctx, a, b, scale):
            ctx.save_for_backward(a, b)
            ctx.scale = scale
            ctx.needs = tuple(ctx.needs_input_grad)
            return a * b * scale

        @staticmethod
        def backward(ctx, grad_output):
            a, b = ctx.saved_tensors
            grad_a = grad_output * b * ctx.scale if ctx.needs_input_grad[0] else None
            grad_b = grad_output * a * ctx.scale if ctx.needs_input_grad[1] else None
            return grad_a, grad_b, None

    class SumAndSquare(base):                       # two outputs
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sum(0), x * x

        @staticmethod
        def backward(ctx, grad_sum, grad_square):
            x, = ctx.saved_tensors
            return grad_sum.unsqueeze(0) * (x * 0 + 1) + 2 * x * grad_square

    return Exp, Legendre3, ScaledMul, SumAndSquare


Exp, Legendre3, ScaledMul, SumAndSquare = make_functions(BASE)


def _x(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, shape)


def test_exp_value_gradient_and_grad_fn():
    x = tl.tensor(_x(2, 3), requires_grad=True)
    y = Exp.apply(x)
    assert repr(y.grad_fn) == "<ExpBackward>" and y.requires_grad and not y.is_leaf
    np.testing.assert_allclose(y.detach().numpy(), np.exp(_x(2, 3)).astype(np.float32),
                               rtol=1e-6)
    (y * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(_x(2, 3)), rtol=1e-6)


@pytest.mark.parametrize("fn", [Exp, Legendre3], ids=lambda f: f.__name__)
def test_gradcheck_float64(fn):
    assert gradcheck(fn.apply, [tl.tensor(_x(3, 4), dtype=np.float64, requires_grad=True)])


def test_gradcheck_two_tensors_and_a_constant():
    a = tl.tensor(_x(2, 3), dtype=np.float64, requires_grad=True)
    b = tl.tensor(_x(2, 3, seed=1), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda a, b: ScaledMul.apply(a, b, 2.5), [a, b])


def test_gradcheck_two_outputs():
    x = tl.tensor(_x(3, 2), dtype=np.float64, requires_grad=True)

    def both(x):
        s, q = SumAndSquare.apply(x)
        return (s * tl.tensor([1.0, -2.0], dtype=np.float64)).sum() + (q * x).sum()
    assert gradcheck(both, [x])


def test_needs_input_grad_and_unneeded_gradients_skipped():
    a = tl.tensor(_x(3), requires_grad=True)
    b = tl.tensor(_x(3, seed=1))
    out = ScaledMul.apply(a, b, 2.0)
    assert out.grad_fn.needs == (True, False, False)
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * _x(3, seed=1), rtol=1e-6)
    assert b.grad is None


def test_unused_output_gets_zero_gradient():
    seen = {}

    class Spy(BASE):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen["g2"] = g2.numpy().copy()
            return g1 * 2 + g2 * 3

    x = tl.tensor(_x(4), requires_grad=True)
    first, _ = Spy.apply(x)
    first.sum().backward()
    np.testing.assert_array_equal(seen["g2"], np.zeros(4, np.float32))
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 2.0))


def test_mark_non_differentiable_and_materialize_grads():
    seen = {}

    def make(materialize):
        class SortWithIndex(BASE):
            @staticmethod
            def forward(ctx, x):
                v = x.detach().numpy()
                order = np.argsort(v, kind="stable")
                ctx.order = order
                values = tl.tensor(v[order])
                mask = tl.tensor(v[order] > 0).float()
                ctx.mark_non_differentiable(mask)
                ctx.set_materialize_grads(materialize)
                return values, mask

            @staticmethod
            def backward(ctx, g_values, g_mask):
                seen["g_mask"] = g_mask
                grad = np.zeros_like(g_values.numpy())
                grad[ctx.order] = g_values.numpy()
                return tl.tensor(grad)
        return SortWithIndex

    x = tl.tensor(np.array([0.5, -1.0, 2.0], np.float32), requires_grad=True)
    values, mask = make(True).apply(x)
    assert values.requires_grad and not mask.requires_grad
    (values * tl.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0, 3.0])
    np.testing.assert_array_equal(seen["g_mask"].numpy(), np.zeros(3))
    values, _ = make(False).apply(tl.tensor(x.detach().numpy(), requires_grad=True))
    values.sum().backward()
    assert seen["g_mask"] is None


def test_setup_context_form():
    class Cube(BASE):
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return 3 * x * x * grad_output

    x = tl.tensor(_x(5), dtype=np.float64, requires_grad=True)
    assert gradcheck(Cube.apply, [x])


def test_input_used_twice_accumulates():
    x = tl.tensor(_x(3), dtype=np.float64, requires_grad=True)
    (Exp.apply(x) + Legendre3.apply(x) * x).sum().backward()
    v = _x(3)
    np.testing.assert_allclose(x.grad.numpy(), np.exp(v) + 1.5 * (5 * v ** 2 - 1) * v
                               + 0.5 * (5 * v ** 3 - 3 * v), rtol=1e-12)


def test_no_graph_under_no_grad_or_without_grad_inputs():
    x = tl.tensor(_x(3), requires_grad=True)
    with tl.no_grad():
        y = Exp.apply(x)
    assert not y.requires_grad and y.grad_fn is None
    z = Exp.apply(tl.tensor(_x(3)))
    assert not z.requires_grad


def test_gradient_cast_to_input_dtype_and_summed_to_its_shape():
    class Loose(BASE):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return tl.ones(4, 3, dtype=np.float64)      # float64, broadcast shape

    x = tl.tensor(np.zeros((1, 3), np.float32), requires_grad=True)
    Loose.apply(x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.full((1, 3), 4.0))


def _bad(backward):
    return type("Bad", (BASE,), {"forward": staticmethod(lambda ctx, x, k: x * k),
                                 "backward": staticmethod(backward)})


@pytest.mark.parametrize("backward, error, match", [
    (lambda ctx, g: g, RuntimeError, "incorrect number of gradients"),
    (lambda ctx, g: (g, g), RuntimeError, "not a Tensor"),
    (lambda ctx, g: (tl.ones(5), None), RuntimeError, "invalid gradient at index 0"),
    (lambda ctx, g: (2.0, None), TypeError, "float"),
], ids=["too-few", "grad-for-constant", "bad-shape", "not-a-tensor"])
def test_bad_backward_results_raise(backward, error, match):
    x = tl.tensor(_x(2, 3), requires_grad=True)
    with pytest.raises(error, match=match):
        _bad(backward).apply(x, 2.0).sum().backward()


def test_extra_none_gradients_are_allowed():
    x = tl.tensor(_x(3), requires_grad=True)
    _bad(lambda ctx, g: (g * 2, None, None)).apply(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_save_for_backward_refuses_non_tensors_and_mark_dirty_is_explained():
    class SavesNumber(BASE):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x

    with pytest.raises(TypeError, match="argument 1"):
        SavesNumber.apply(tl.tensor(_x(2), requires_grad=True))

    class Dirty(BASE):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

    with pytest.raises(NotImplementedError, match="in-place"):
        Dirty.apply(tl.tensor(_x(2), requires_grad=True))


def test_saved_tensor_changed_in_place_is_detected():
    x = tl.tensor(_x(3), requires_grad=True)
    y = Exp.apply(x)
    z = y * 1
    with tl.no_grad():
        y.mul_(2)                                   # y is what Exp saved
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_second_backward_needs_retain_graph():
    x = tl.tensor(_x(3), requires_grad=True)
    y = Legendre3.apply(x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_autograd_function_name_serves_both_kinds():
    """tinygrad_llm.autograd.Function: the library's array-level ops and torch-style
    subclasses behind one name."""
    fns = make_functions(tl.autograd.Function)
    y = fns[0].apply(tl.tensor(_x(3), requires_grad=True))
    assert repr(y.grad_fn) == "<ExpBackward>"
    x = tl.tensor(_x(3, 2), dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda x: fns[3].apply(x)[1] + fns[1].apply(x), [x])
    assert tl.exp(x).grad_fn is not None                 # the array-level ops still work


# ----- parity with torch.autograd.Function ---------------------------------------------------

def _both(torch, fn_index, *arrays, extra=()):
    mine, theirs = make_functions(BASE)[fn_index], make_functions(torch.autograd.Function)[
        fn_index]
    xs = [tl.tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = mine.apply(*xs, *extra), theirs.apply(*ts, *extra)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    weights = [np.random.default_rng(k).standard_normal(o.shape) for k, o in enumerate(outs)]
    sum(((o * tl.tensor(w)).sum() for o, w in zip(outs, weights)), tl.tensor(0.0)).backward()
    sum((r * torch.tensor(w)).sum() for r, w in zip(refs, weights)).backward()
    for o, r in zip(outs, refs):
        np.testing.assert_allclose(o.detach().numpy(), r.detach().numpy(), rtol=1e-12)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("fn_index, shapes, extra", [
    (0, [(3, 4)], ()), (1, [(5,)], ()), (2, [(2, 3), (2, 3)], (0.5,)), (3, [(4, 2)], ())],
    ids=["Exp", "Legendre3", "ScaledMul", "SumAndSquare"])
def test_matches_torch(fn_index, shapes, extra):
    torch = pytest.importorskip("torch")
    _both(torch, fn_index, *[_x(*s, seed=k) for k, s in enumerate(shapes)], extra=extra)


def test_error_types_match_torch():
    torch = pytest.importorskip("torch")

    class TooFew(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooFew.apply(torch.ones(2, requires_grad=True), 2.0).sum().backward()

    class BadShape(TooFew):
        @staticmethod
        def backward(ctx, g):
            return torch.ones(5), None

    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        BadShape.apply(torch.ones(2, 3, requires_grad=True), 2.0).sum().backward()

    class Loose(TooFew):
        @staticmethod
        def backward(ctx, g):
            return torch.ones(4, 3, dtype=torch.float64), None

    x = torch.zeros(1, 3, requires_grad=True)
    Loose.apply(x, 1.0).sum().backward()            # torch sums and casts too
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [[4.0, 4.0, 4.0]]
