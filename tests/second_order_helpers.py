"""Second derivatives checked against finite differences of the first (float64).

For fn(*leaves) -> Tensor, a fixed random upstream gradient u and fixed random directions w_j:

    L(x) = <u, fn(x)>,    G_j(x) = dL/dx_j  (first order),    S(x) = sum_j <w_j, G_j(x)>

dS/dx_k = sum_j (d^2 L / dx_k dx_j) w_j is a Hessian-vector product. ``check_second_order``
takes it by two backward passes (the first with create_graph=True) and compares it with central
differences of S, each S from a plain first-order backward pass: per element for small inputs,
along random unit directions for larger ones. It also checks that the gradients recorded with
create_graph=True equal the plain first-order ones.
"""
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _first_order(fn, values, u, create_graph=False):
    leaves = [leaf(v) for v in values]
    out = fn(*leaves)
    seed = tg.tensor(u) if create_graph else u
    G = grad(out, leaves, grad_outputs=seed, create_graph=create_graph, allow_unused=True)
    return leaves, G


def _objective(fn, values, u, ws):
    _, G = _first_order(fn, values, u)
    return sum(float((g.data * w).sum()) for g, w in zip(G, ws) if g is not None)


def hessian_vector(fn, arrays, seed=0):
    """(first-order gradients recorded with a graph, dS/dx per input), and (u, ws)."""
    rng = np.random.default_rng(seed)
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    u = rng.standard_normal(np.shape(fn(*[tg.tensor(v) for v in values]).data))
    ws = [rng.standard_normal(v.shape) for v in values]
    leaves, G = _first_order(fn, values, u, create_graph=True)
    S = None
    for g, w in zip(G, ws):
        if g is not None and g.requires_grad:
            term = (g * tg.tensor(w)).sum()
            S = term if S is None else S + term
    if S is None:
        return G, [np.zeros_like(v) for v in values], (u, ws)
    H = grad(S, leaves, allow_unused=True)
    H = [np.zeros_like(v) if h is None else h.data for h, v in zip(H, values)]
    return G, H, (u, ws)


def check_second_order(fn, arrays, seed=0, eps=1e-6, rtol=1e-4, atol=1e-6, max_elementwise=48,
                       n_directions=4):
    """Assert the second derivative of fn (see the module docstring); returns dS/dx."""
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    G, H, (u, ws) = hessian_vector(fn, values, seed)
    _, G_plain = _first_order(fn, values, u)
    for g, gp in zip(G, G_plain):
        assert (g is None) == (gp is None)
        if g is not None:
            np.testing.assert_allclose(g.data, gp.data, rtol=1e-9, atol=1e-10)
    rng = np.random.default_rng(seed + 1)
    total = sum(v.size for v in values)
    scale = max([1.0] + [float(np.abs(h).max()) for h in H if h.size])
    for k, v in enumerate(values):
        if not v.size:
            continue
        if total <= max_elementwise:
            directions = [np.eye(v.size)[i].reshape(v.shape) for i in range(v.size)]
        else:
            directions = [d / np.linalg.norm(d)
                          for d in rng.standard_normal((n_directions,) + v.shape)]
        for d in directions:
            plus = list(values)
            minus = list(values)
            plus[k], minus[k] = v + eps * d, v - eps * d
            numeric = (_objective(fn, plus, u, ws) - _objective(fn, minus, u, ws)) / (2 * eps)
            analytic = float((H[k] * d).sum())
            assert abs(analytic - numeric) <= atol * scale + rtol * abs(numeric), (
                f"input {k}: d S along a direction: analytic {analytic!r}, "
                f"finite differences {numeric!r}")
    return H
