"""autograd.grad and backward(create_graph=, inputs=) follow PyTorch's semantics.

The per-op second derivatives are checked family by family in test_double_backward_*.py; this
file checks the engine: what is returned, what is accumulated, what is kept, what is refused.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_llm as tl
from tinygrad_llm.autograd import Function, grad

torch = pytest.importorskip("torch")


def pair(values):
    """The same float64 leaf in both libraries."""
    a = np.asarray(values, dtype=np.float64)
    return tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def close(ours, theirs):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12,
                               atol=1e-12)


def test_grad_returns_without_touching_dot_grad():
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0, 6.0])
    assert x.grad is None and not g.requires_grad


def test_a_single_input_gives_a_one_tuple_and_a_list_gives_a_tuple():
    x = tl.tensor(2.0, requires_grad=True)
    y = tl.tensor(3.0, requires_grad=True)
    out = grad(x * y, x)
    assert isinstance(out, tuple) and len(out) == 1
    gx, gy = grad(x * y, [x, y])
    assert (gx.item(), gy.item()) == (3.0, 2.0)


def test_unused_inputs_raise_unless_allowed():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    z = tl.tensor([5.0, 6.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        grad((x * x).sum(), [x, z])
    gx, gz = grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None
    gx, gz = grad((x * x).sum(), [x, z], materialize_grads=True)
    np.testing.assert_array_equal(gz.numpy(), [0.0, 0.0])


def test_an_input_that_does_not_require_grad_is_refused():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    c = tl.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad((x * c).sum(), [c])


def test_retain_graph_defaults_to_create_graph():
    x = tl.tensor([0.5, -1.5], requires_grad=True)
    y = x.tanh().sum()
    grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        grad(y, x)
    t = x.tanh()
    grad(t.sum(), x)
    with pytest.raises(RuntimeError, match="second time"):
        grad((t * 2).sum(), x)                   # a new op on top of the freed graph
    y = x.tanh().sum()
    grad(y, x, create_graph=True)
    grad(y, x)                                   # the graph was kept


def test_gradient_with_respect_to_an_intermediate_tensor():
    x, xt = pair([0.3, -0.7, 1.1])
    y, yt = x * 2.0, xt * 2.0
    (g,) = grad((y * y.exp()).sum(), y)
    (gt,) = torch.autograd.grad((yt * yt.exp()).sum(), yt)
    close(g, gt)


def test_several_outputs_with_their_grad_outputs():
    x, xt = pair([0.3, -0.7, 1.1])
    v1, v2 = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 0.25])
    (g,) = grad([x * x, x.exp()], x, grad_outputs=[tl.tensor(v1), tl.tensor(v2)])
    (gt,) = torch.autograd.grad([xt * xt, xt.exp()], xt,
                                grad_outputs=[torch.tensor(v1), torch.tensor(v2)])
    close(g, gt)


def test_backward_inputs_accumulates_only_into_those():
    a, at = pair([1.0, 2.0])
    b, bt = pair([3.0, 4.0])
    h, ht = a * b, at * bt
    h.retain_grad()
    (h * h).sum().backward(inputs=[a, h])
    ht.retain_grad()
    (ht * ht).sum().backward(inputs=[at, ht])
    close(a.grad, at.grad)
    close(h.grad, ht.grad)
    assert b.grad is None and bt.grad is None


def test_backward_create_graph_gives_a_differentiable_grad_and_accumulates_like_torch():
    x, xt = pair([0.3, -1.2, 2.0])
    for t, lib in ((x, "ours"), (xt, "torch")):
        (t * t * t).sum().backward(create_graph=True)
        assert t.grad.requires_grad
        t.grad.sum().backward()                  # adds d(sum 3x^2)/dx = 6x into .grad
    close(x.grad, xt.grad)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=1, max_size=6))
def test_second_derivative_of_a_composite_matches_torch(values):
    x, xt = pair(values)

    def f(lib, t):
        return ((t * t).tanh() * t.exp() - t * 0.5).sum()

    (g,) = grad(f(tl, x), x, create_graph=True)
    (gt,) = torch.autograd.grad(f(torch, xt), xt, create_graph=True)
    close(g, gt)
    w = np.linspace(-1, 1, len(values))
    (h,) = grad((g * tl.tensor(w)).sum(), x)
    (ht,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), xt)
    close(h, ht)


def test_grad_outputs_that_require_grad_give_a_jacobian_vector_product():
    # u -> J^T u is linear in u; differentiating it w.r.t. u along v gives J v (forward mode)
    x, xt = pair([0.3, -1.2, 2.0])
    v = np.array([1.0, -2.0, 0.5])
    u = tl.zeros(3, dtype=tl.float64, requires_grad=True)
    (jtu,) = grad(x.tanh() * x, x, grad_outputs=u, create_graph=True)
    (jv,) = grad(jtu, u, grad_outputs=tl.tensor(v))
    _, jvt = torch.func.jvp(lambda t: t.tanh() * t, (xt.detach(),), (torch.tensor(v),))
    close(jv, jvt)


def test_third_derivative():
    x, xt = pair([0.4, -0.9])
    derivs = []
    for t, g in ((x, grad), (xt, torch.autograd.grad)):
        y = t.tanh().sum()
        for _ in range(3):
            (y,) = g(y, t, create_graph=True)
            y = y.sum()
        derivs.append(y)
    close(*derivs)


# ----- what the engine refuses ---------------------------------------------------------------

class SavesAnIntermediate(Function):
    """y = x^2 with 2x saved: under create_graph the saved float array would become a
    constant, so the engine must refuse."""

    def forward(self, x):
        self.save_for_backward(2 * x)
        return x * x

    def backward(self, g):
        (two_x,) = self.saved
        return g * two_x


class RawArrayBackward(Function):
    """y = x^2 with a backward that leaves the array namespace (np.multiply on .data)."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved
        return np.multiply(np.asarray(getattr(g, "data", g)), 2 * np.asarray(
            getattr(x, "data", x)))


@pytest.mark.parametrize("op", [SavesAnIntermediate, RawArrayBackward])
def test_an_op_that_cannot_be_differentiated_twice_raises_naming_itself(op):
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (g,) = grad(op.apply(x).sum(), x)            # first order works
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    with pytest.raises(RuntimeError, match=op.__name__):
        grad(op.apply(x).sum(), x, create_graph=True)


class SquareWithTwin(Function):
    """y = x^2, backward through raw arrays (a stand-in for a fused kernel), plus its twin."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved
        return 2.0 * np.asarray(g) * np.asarray(x)

    @staticmethod
    def twin(x):
        return x * x


def test_a_fused_op_is_differentiated_twice_through_its_twin():
    x = tl.tensor([1.5, -2.0], requires_grad=True)
    (g,) = grad((SquareWithTwin.apply(x) * x).sum(), x, create_graph=True)   # 3x^2
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    (h,) = grad(g.sum(), x)                                                 # 6x
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_post_accumulate_hooks_run_once_per_backward_with_create_graph():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.detach().numpy().copy()))
    ((x * x).sum() + x.sum()).backward(create_graph=True)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 5.0])


def test_deep_graph_differentiated_twice_without_recursion_error():
    x = tl.tensor([0.5], dtype=tl.float64, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.00001
    (g,) = grad((y * y).sum(), x, create_graph=True)      # 2 x c^2
    (h,) = grad(g.sum(), x)                               # 2 c^2
    np.testing.assert_allclose(h.numpy(), [2 * 1.00001 ** 40_000], rtol=1e-9)


@pytest.mark.parametrize("f", [
    lambda t, c: t * c, lambda t, c: t / c, lambda t, c: c / t, lambda t, c: t ** c,
    lambda t, c: c ** t, lambda t, c: t - c,
], ids=["mul", "div", "rdiv", "pow", "rpow", "sub"])
def test_constant_array_arguments_stay_constants_when_recorded(f):
    c = np.array([1.5, 2.5])
    x, xt = pair([0.5, 1.5])
    (g,) = grad((f(x, c) ** 2).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    (gt,) = torch.autograd.grad((f(xt, torch.tensor(c)) ** 2).sum(), xt, create_graph=True)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    close(h, ht)


def test_a_pytorch_program_reaches_func_and_autograd_grad_after_a_plain_import():
    import tinygrad_llm as tt                    # as `import tinygrad_llm as torch` would
    x, xt = pair([0.5, -1.0, 2.0])
    hessian = tt.func.hessian(lambda t: (t.tanh() * t).sum())(x.detach())
    expected = torch.func.hessian(lambda t: (t.tanh() * t).sum())(xt.detach())
    close(hessian, expected)
    (g,) = tt.autograd.grad((x * x).sum(), x)
    close(g, 2 * xt)


@pytest.mark.parametrize("name", ["exp", "expm1", "sqrt", "rsqrt", "reciprocal", "tan", "tanh",
                                  "sigmoid", "log"])
def test_ops_on_0d_tensors_are_differentiated_twice(name):
    """NumPy returns a scalar, not an array, for a 0-d input; the op's saved output must
    still be recognised as its output (Function.apply makes it the Tensor's own array)."""
    x, xt = pair(0.7)
    (g,) = grad(getattr(x, name)() * x, x, create_graph=True)
    (h,) = grad(g, x)
    (gt,) = torch.autograd.grad(getattr(xt, name)() * xt, xt, create_graph=True)
    (ht,) = torch.autograd.grad(gt, xt)
    close(h, ht)
    y = x.exp()
    assert y.data is y._ctx.saved[0]          # the saved output is the Tensor's own array
