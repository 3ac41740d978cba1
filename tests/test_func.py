"""tinygrad_llm.func: grad, vjp, jvp, hvp, jacrev/jacfwd and hessian against known formulas,
finite differences, each other and torch.func. Only ops that are double-differentiable from
the start of the create_graph work are used: + - * / sum matmul exp tanh pow."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
from tinygrad_llm import func
from tinygrad_llm.testing import strategies as tst
from tinygrad_llm.testing import (check_hessian_symmetric, check_hvp_matches_finite_differences,
                                  check_jvp_vjp_adjoint)

W = np.array([[0.5, -1.0, 0.25], [1.5, 0.3, -0.7], [-0.2, 0.8, 1.1], [0.9, -0.4, 0.6]])


def t(a, requires_grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def vector_fn(x):
    """R^3 -> R^4: tanh(W x) * sum(exp(x / 2)) + (W x)^2 / 3."""
    z = t(W) @ x
    return z.tanh() * (x / 2).exp().sum() + z ** 2 / 3


def scalar_fn(x):
    """R^3 -> R: sum(tanh(W x) * (W x)^2) + exp(sum(x) / 3) / (1 + sum(x^2)) (0-d ops too)."""
    z = t(W) @ x
    return (z.tanh() * z ** 2).sum() + (x.sum() / 3).exp() / ((x * x).sum() + 1)


vectors = hnp.arrays(np.float64, 3, elements=st.floats(-1.5, 1.5))
outs = hnp.arrays(np.float64, 4, elements=st.floats(-1.5, 1.5))


def numeric_jacobian(f, x, eps=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = eps
        cols.append((f(t(x + e)).numpy() - f(t(x - e)).numpy()) / (2 * eps))
    return np.stack(cols, axis=-1)


# ----- known formulas ----------------------------------------------------------------------------

@given(tst.arrays(shape=tst.shapes(max_dims=3, max_side=3), elements=tst.floats(-2, 2)))
@settings(max_examples=15)
def test_grad_hessian_and_jacobian_of_elementwise_functions_on_any_shape(x):
    f = lambda a: (a ** 3).sum()
    n = x.size
    np.testing.assert_allclose(func.grad(f)(t(x)).numpy(), 3 * x ** 2, rtol=1e-12)
    H = func.hessian(f)(t(x))
    assert H.shape == x.shape + x.shape
    np.testing.assert_allclose(H.numpy().reshape(n, n), np.diag(6 * x.ravel()), atol=1e-12)
    J = func.jacfwd(lambda a: a.tanh())(t(x))
    assert J.shape == x.shape + x.shape
    np.testing.assert_allclose(J.numpy().reshape(n, n), np.diag(1 - np.tanh(x.ravel()) ** 2),
                               atol=1e-12)


def test_hessian_of_a_quadratic_form_is_its_symmetric_part():
    A = np.array([[2.0, 1.0], [-3.0, 4.0]])
    H = func.hessian(lambda x: x @ (t(A) @ x))(t([0.3, -0.7])).numpy()
    np.testing.assert_allclose(H, A + A.T, atol=1e-12)


def test_grad_argnums_has_aux_and_value():
    f = lambda a, b: ((a * b).sum(), a + b)
    a, b = t([1.0, 2.0]), t([3.0, -1.0])
    (ga, gb), aux = func.grad(f, argnums=(0, 1), has_aux=True)(a, b)
    np.testing.assert_allclose(ga.numpy(), b.numpy())
    np.testing.assert_allclose(gb.numpy(), a.numpy())
    np.testing.assert_allclose(aux.numpy(), [4.0, 1.0])
    g, value = func.grad_and_value(lambda a, b: (a * b).sum(), argnums=1)(a, b)
    np.testing.assert_allclose(g.numpy(), a.numpy())
    assert value.item() == 1.0
    assert not g.requires_grad and not value.requires_grad  # nothing outside: no history


def test_grad_of_a_tuple_argument_and_an_unused_input():
    f = lambda p: (p[0] ** 2).sum() + 0 * p[1].sum()
    ga, gb = func.grad(f)((t([1.0, -2.0]), t([5.0])))
    np.testing.assert_allclose(ga.numpy(), [2.0, -4.0])
    np.testing.assert_allclose(gb.numpy(), [0.0])
    g = func.grad(lambda a, b: (a * 2).sum())(t([1.0]), t([3.0]))
    np.testing.assert_allclose(g.numpy(), [2.0])


def test_grad_refuses_a_non_scalar_output_and_integer_inputs():
    with pytest.raises(RuntimeError, match="one-element"):
        func.grad(lambda a: a * 2)(t([1.0, 2.0]))
    with pytest.raises(TypeError, match="floating point"):
        func.grad(lambda a: a.sum())(tg.tensor([1, 2]))


def test_grad_works_inside_no_grad():
    with tg.no_grad():
        g = func.grad(lambda a: (a ** 2).sum())(t([3.0]))
    np.testing.assert_allclose(g.numpy(), [6.0])


# ----- properties, over hypothesis inputs ------------------------------------------------------

@given(vectors, outs, vectors)
@settings(max_examples=15)
def test_jvp_and_vjp_are_adjoint(x, u, v):
    assert check_jvp_vjp_adjoint(vector_fn, x, u, v)


@given(vectors)
@settings(max_examples=10)
def test_hessian_is_symmetric(x):
    assert check_hessian_symmetric(scalar_fn, x)


@given(vectors, vectors)
@settings(max_examples=10)
def test_hvp_matches_finite_differences_of_grad(x, v):
    assert check_hvp_matches_finite_differences(scalar_fn, x, v)


@given(vectors)
@settings(max_examples=10)
def test_jacrev_and_jacfwd_match_finite_differences(x):
    expected = numeric_jacobian(vector_fn, x)
    J = func.jacrev(vector_fn)(t(x))
    assert J.shape == (4, 3)
    np.testing.assert_allclose(J.numpy(), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(func.jacfwd(vector_fn)(t(x)).numpy(), J.numpy(), rtol=1e-10,
                               atol=1e-12)
    assert func.jacobian is func.jacrev


@given(vectors, vectors)
@settings(max_examples=10)
def test_hvp_equals_hessian_times_v_and_jvp_equals_jacobian_times_v(x, v):
    _, (hv,) = func.hvp(scalar_fn, (t(x),), (t(v),))
    H = func.hessian(scalar_fn)(t(x)).numpy()
    np.testing.assert_allclose(hv.numpy(), H @ v, rtol=1e-8, atol=1e-10)
    out, jv = func.jvp(vector_fn, (t(x),), (t(v),))
    np.testing.assert_allclose(out.numpy(), vector_fn(t(x)).numpy())
    np.testing.assert_allclose(jv.numpy(), func.jacrev(vector_fn)(t(x)).numpy() @ v,
                               rtol=1e-8, atol=1e-10)


# ----- pytrees and nesting -----------------------------------------------------------------------

def test_vjp_and_jvp_with_tuple_primals_and_outputs():
    f = lambda a, b: (a * b, (a ** 2).sum())
    a, b = t([1.0, 2.0]), t([3.0, -1.0])
    (prod, sq), vjp_fn = func.vjp(f, a, b)
    np.testing.assert_allclose(prod.numpy(), [3.0, -2.0])
    ga, gb = vjp_fn((t([1.0, 1.0]), t(2.0)))
    np.testing.assert_allclose(ga.numpy(), b.numpy() + 2 * 2 * a.numpy())
    np.testing.assert_allclose(gb.numpy(), a.numpy())
    ga2, _ = vjp_fn((t([0.0, 0.0]), t(1.0)))               # vjp_fn may be called again
    np.testing.assert_allclose(ga2.numpy(), 2 * a.numpy())
    _, (jprod, jsq) = func.jvp(f, (a, b), (t([1.0, 0.0]), t([0.0, 1.0])))
    np.testing.assert_allclose(jprod.numpy(), [3.0, 2.0])   # b * da + a * db
    assert jsq.item() == pytest.approx(2.0)                 # 2 a . da
    with pytest.raises(ValueError, match="structure"):
        vjp_fn(t([1.0, 1.0]))


def test_jacrev_of_several_arguments_and_outputs():
    f = lambda a, b: (a * b, a.sum() * 2)
    a, b = t([1.0, 2.0]), t([3.0, -1.0])
    (Jpa, Jpb), (Jsa, Jsb) = func.jacrev(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(Jpa.numpy(), np.diag(b.numpy()))
    np.testing.assert_allclose(Jpb.numpy(), np.diag(a.numpy()))
    np.testing.assert_allclose(Jsa.numpy(), [2.0, 2.0])
    np.testing.assert_allclose(Jsb.numpy(), [0.0, 0.0])
    (Fpa, Fpb), (Fsa, Fsb) = func.jacfwd(f, argnums=(0, 1))(a, b)
    for got, want in ((Fpa, Jpa), (Fpb, Jpb), (Fsa, Jsa), (Fsb, Jsb)):
        np.testing.assert_allclose(got.numpy(), want.numpy())


def test_matrix_input_jacobian_has_out_shape_then_in_shape():
    X = t(np.arange(6.0).reshape(2, 3) / 5)
    J = func.jacrev(lambda m: (m ** 2).sum(1))(X)
    assert J.shape == (2, 2, 3)
    expected = np.zeros((2, 2, 3))
    expected[0, 0], expected[1, 1] = 2 * X.numpy()[0], 2 * X.numpy()[1]
    np.testing.assert_allclose(J.numpy(), expected)
    np.testing.assert_allclose(func.jacfwd(lambda m: (m ** 2).sum(1))(X).numpy(), expected)


def test_grad_of_grad_and_a_gradient_penalty_through_closed_over_parameters():
    x = t([0.3, -0.5, 0.8])
    d3 = func.grad(lambda a: func.grad(lambda b: (b ** 4).sum())(a).sum())(x)
    np.testing.assert_allclose(d3.numpy(), 12 * x.numpy() ** 2)
    w = t([0.7, -1.2, 0.4], requires_grad=True)
    g = func.grad(lambda a: (a * w).tanh().sum())(x)     # g = w (1 - tanh(w x)^2)
    assert g.requires_grad                               # it depends on w, which needs grad
    (g * g).sum().backward()
    w_ = w.detach().numpy()
    th = np.tanh(w_ * x.numpy())
    dg_dw = (1 - th ** 2) - 2 * w_ * x.numpy() * th * (1 - th ** 2)
    np.testing.assert_allclose(w.grad.numpy(), 2 * g.detach().numpy() * dg_dw, rtol=1e-10)


def test_nested_transforms_keep_their_variables_apart():
    """Perturbation confusion (Siskind and Pearlmutter): d/dx [x * d/dy (x + y) at y = x] is
    1; differentiating the inner function with respect to x itself would give 2."""
    x = t(1.5)
    inner = lambda a: func.grad(lambda b: a + b)(a)           # d/dy (x + y) = 1
    assert func.grad(lambda a: a * inner(a))(x).item() == pytest.approx(1.0)
    w = t([0.5, -1.0], requires_grad=True)
    g = func.grad(lambda a: (a * a * w).sum())(w)             # d/da sum(a^2 w) at a = w: 2 w^2
    np.testing.assert_allclose(g.detach().numpy(), 2 * w.detach().numpy() ** 2)
    g.sum().backward()                                        # d/dw sum(2 w^2) = 4 w
    np.testing.assert_allclose(w.grad.numpy(), 4 * w.detach().numpy())


def test_hessian_by_any_composition_of_jacrev_and_jacfwd():
    x = t([0.3, -0.2, 0.9])
    H = func.hessian(scalar_fn)(x).numpy()
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    for outer, inner in ((func.jacfwd, func.jacrev), (func.jacrev, func.jacfwd),
                         (func.jacfwd, func.jacfwd)):
        np.testing.assert_allclose(outer(inner(scalar_fn))(x).numpy(), H, rtol=1e-10,
                                   atol=1e-12)


# ----- torch.func parity ------------------------------------------------------------------------

@given(vectors, outs, vectors)
@settings(max_examples=10)
def test_parity_with_torch_func(x, u, v):
    torch = pytest.importorskip("torch")

    def torch_scalar(a):
        z = torch.tensor(W) @ a
        return (z.tanh() * z ** 2).sum() + (a.sum() / 3).exp() / ((a * a).sum() + 1)

    def torch_vector(a):
        z = torch.tensor(W) @ a
        return z.tanh() * (a / 2).exp().sum() + z ** 2 / 3

    tx, tu, tv = (torch.tensor(a) for a in (x, u, v))
    np.testing.assert_allclose(func.hessian(scalar_fn)(t(x)).numpy(),
                               torch.func.hessian(torch_scalar)(tx).numpy(), rtol=1e-9,
                               atol=1e-11)
    _, jv = func.jvp(vector_fn, (t(x),), (t(v),))
    np.testing.assert_allclose(jv.numpy(), torch.func.jvp(torch_vector, (tx,), (tv,))[1]
                               .numpy(), rtol=1e-9, atol=1e-11)
    _, vjp_fn = func.vjp(vector_fn, t(x))
    _, torch_vjp = torch.func.vjp(torch_vector, tx)
    np.testing.assert_allclose(vjp_fn(t(u))[0].numpy(), torch_vjp(tu)[0].numpy(), rtol=1e-9,
                               atol=1e-11)
    np.testing.assert_allclose(func.jacrev(vector_fn)(t(x)).numpy(),
                               torch.func.jacrev(torch_vector)(tx).numpy(), rtol=1e-9,
                               atol=1e-11)


def test_gradient_penalty_through_a_linear_layer_matches_torch():
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    layer = tg.nn.Linear(3, 2, dtype=tg.float64)
    x = t([0.3, -0.2, 0.9])
    g = func.grad(lambda a: layer(a).tanh().sum())(x)
    assert g.requires_grad                      # through the layer's parameters
    (g * g).sum().backward()
    ref = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.detach().numpy()))
        ref.bias.copy_(torch.tensor(layer.bias.detach().numpy()))
    g_ref = torch.func.grad(lambda a: ref(a).tanh().sum())(torch.tensor(x.numpy()))
    (g_ref * g_ref).sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), g_ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-10)


def test_results_carry_no_graph_when_nothing_outside_needs_one():
    x, v = t([0.3, -0.2, 0.9]), t([1.0, 0.5, -1.0])
    results = [func.jacrev(vector_fn)(x), func.jacfwd(vector_fn)(x),
               func.hessian(scalar_fn)(x), *func.jvp(vector_fn, (x,), (v,)),
               func.hvp(scalar_fn, (x,), (v,))[1][0], func.vjp(vector_fn, x)[0]]
    assert not any(r.requires_grad for r in results)
    H = func.hessian(lambda m: (m ** 3).sum())(t(np.arange(6.0).reshape(2, 3)))
    assert H.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(H.numpy().reshape(6, 6), np.diag(6 * np.arange(6.0)))
