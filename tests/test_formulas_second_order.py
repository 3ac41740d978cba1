"""Second derivatives (issue 15), each against its formula written literally in NumPy: the
library's side is ``autograd.grad`` applied twice (the first pass with create_graph=True).
Float64, hypothesis over small inputs. docs/FORMULAS.md ("Second derivatives") cites each test.
"""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import autograd, func
from tinygrad_llm.testing import strategies as tst

from formula_helpers import close

SMALL = tst.arrays(shape=tst.shapes(min_dims=1, max_dims=2, max_side=4),
                   elements=tst.floats(-4.0, 4.0))
EXAMPLES = settings(max_examples=20, deadline=None)


def elementwise_second_derivative(f, x):
    """f''(x_i) for an elementwise f. g = grad sum f(x) = f'(x) is recorded (create_graph);
    the Hessian of sum f(x) is diagonal, so grad sum g = its row sums = f''(x)."""
    xt = tg.tensor(x, requires_grad=True)
    g, = autograd.grad(f(xt).sum(), xt, create_graph=True)
    h, = autograd.grad(g.sum(), xt)
    return h.numpy()


def hessian(f, x):
    """The full Hessian of a scalar f at x (any shape), flattened to (x.size, x.size): row k is
    e_k^T d(grad f)/dx, one backward pass through the recorded gradient per row."""
    xt = tg.tensor(x, requires_grad=True)
    g, = autograd.grad(f(xt), xt, create_graph=True)
    rows = []
    for k in range(x.size):
        e_k = np.zeros(x.size)
        e_k[k] = 1.0
        row, = autograd.grad(g, xt, grad_outputs=tg.tensor(e_k.reshape(x.shape)),
                             retain_graph=True)
        rows.append(row.numpy().ravel())
    return np.stack(rows)


# ----- elementwise activations ---------------------------------------------------------------

@EXAMPLES
@given(SMALL)
def test_tanh_second_derivative(x):
    t = np.tanh(x)
    close(elementwise_second_derivative(F.tanh, x), -2 * t * (1 - t ** 2))


@EXAMPLES
@given(SMALL)
def test_sigmoid_second_derivative(x):
    s = 1 / (1 + np.exp(-x))
    close(elementwise_second_derivative(F.sigmoid, x), s * (1 - s) * (1 - 2 * s))


@EXAMPLES
@given(SMALL)
def test_gelu_second_derivative(x):
    # gelu(x) = x Phi(x);  gelu' = Phi + x phi;  gelu'' = 2 phi + x phi' = phi(x) (2 - x^2)
    phi = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
    close(elementwise_second_derivative(F.gelu, x), phi * (2 - x ** 2))


@EXAMPLES
@given(SMALL)
def test_gelu_tanh_second_derivative(x):
    # gelu(x) = x/2 (1 + tanh u),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
    # gelu'' = (1 - t^2) (u' + x u''/2 - x t u'^2),  t = tanh u
    c = math.sqrt(2 / math.pi)
    t = np.tanh(c * (x + 0.044715 * x ** 3))
    u1, u2 = c * (1 + 3 * 0.044715 * x ** 2), c * 6 * 0.044715 * x
    literal = (1 - t ** 2) * (u1 + x * u2 / 2 - x * t * u1 ** 2)
    close(elementwise_second_derivative(lambda v: F.gelu(v, approximate="tanh"), x), literal)


# ----- softmax cross-entropy -----------------------------------------------------------------

@EXAMPLES
@given(st.data(), st.integers(1, 3), st.integers(2, 4), st.sampled_from(["mean", "sum"]))
def test_cross_entropy_hessian(data, n, c, reduction):
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=tst.floats(-3.0, 3.0)))
    target = data.draw(tst.labels(c, (n,)))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # d^2 L / dz_ni dz_mj = [n = m] (p_ni [i = j] - p_ni p_nj) (/ N for the mean); the
    # target drops out
    literal = np.zeros((n * c, n * c))
    for row in range(n):
        block = np.diag(p[row]) - np.outer(p[row], p[row])
        literal[row * c:(row + 1) * c, row * c:(row + 1) * c] = block
    if reduction == "mean":
        literal /= n
    got = hessian(lambda zt: F.cross_entropy(zt, target, reduction=reduction), z)
    close(got, literal)


# ----- Hessian-vector products and Gauss-Newton ----------------------------------------------

def softplus_sum(A):
    """f(x) = sum_i log(1 + exp(a_i . x)): H = A^T diag(s (1 - s)) A, s = sigmoid(A x)."""
    At = tg.tensor(A)
    return lambda x: (1.0 + (At @ x).exp()).log().sum()


@EXAMPLES
@given(st.data(), st.integers(1, 4), st.integers(1, 4))
def test_hessian_vector_product(data, m, n):
    A = data.draw(hnp.arrays(np.float64, (m, n), elements=tst.floats(-2.0, 2.0)))
    x, v = (data.draw(hnp.arrays(np.float64, (n,), elements=tst.floats(-2.0, 2.0)))
            for _ in range(2))
    s = 1 / (1 + np.exp(-A @ x))
    literal = A.T @ (s * (1 - s) * (A @ v))                          # H v, H written out
    # Hv = d/dx <grad f(x), v>: one backward pass recorded, a second one through it
    xt = tg.tensor(x, requires_grad=True)
    g, = autograd.grad(softplus_sum(A)(xt), xt, create_graph=True)
    hv, = autograd.grad((g * tg.tensor(v)).sum(), xt)
    close(hv.numpy(), literal)


def test_func_hvp_matches_the_written_out_hessian():
    rng = np.random.default_rng(0)
    A, x, v = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)
    s = 1 / (1 + np.exp(-A @ x))
    _, (hv,) = func.hvp(softplus_sum(A), (tg.tensor(x),), (tg.tensor(v),))
    close(hv.numpy(), A.T @ (s * (1 - s) * (A @ v)))


@EXAMPLES
@given(st.data(), st.integers(2, 4), st.integers(1, 4))
def test_gauss_newton_vector_product(data, m, n):
    A = data.draw(hnp.arrays(np.float64, (m, n), elements=tst.floats(-2.0, 2.0)))
    x, v = (data.draw(hnp.arrays(np.float64, (n,), elements=tst.floats(-2.0, 2.0)))
            for _ in range(2))
    target = data.draw(st.integers(0, m - 1))
    # model r(x) = tanh(A x) (m logits), loss L(r) = cross-entropy(r, target)
    t = np.tanh(A @ x)
    p = np.exp(t - t.max())
    p /= p.sum()
    J = (1 - t ** 2)[:, None] * A                                     # dr/dx (m, n)
    H_L = np.diag(p) - np.outer(p, p)                                 # d^2 L/dr^2 (m, m)
    literal = J.T @ H_L @ J @ v                                       # G v = J^T H_L J v

    xt = tg.tensor(x, requires_grad=True)
    r = F.tanh(tg.tensor(A) @ xt)
    # J v by the double-vjp trick: J^T u is linear in u, so d<J^T u, v>/du = J v
    u = tg.tensor(np.zeros(m), requires_grad=True)
    jt_u, = autograd.grad(r, xt, grad_outputs=u, create_graph=True)
    jv, = autograd.grad(jt_u, u, grad_outputs=tg.tensor(v))
    # H_L (J v): a Hessian-vector product of the loss at r (a new leaf: the model's
    # curvature, the other part of the full Hessian, is left out)
    r_leaf = tg.tensor(r.detach().numpy(), requires_grad=True)
    g_r, = autograd.grad(F.cross_entropy(r_leaf[None], np.array([target])), r_leaf,
                         create_graph=True)
    h_jv, = autograd.grad(g_r, r_leaf, grad_outputs=jv)
    gv, = autograd.grad(r, xt, grad_outputs=h_jv)                    # J^T (H_L J v)
    close(gv.numpy(), literal)
