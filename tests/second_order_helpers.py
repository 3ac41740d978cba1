"""Second derivatives of fn(*leaves) -> Tensor (float64), for the double-backward tests.

For a fixed random upstream gradient u and fixed random directions w_j:

    L(x) = <u, fn(x)>,    G_j(x) = dL/dx_j  (first order),    S(x) = sum_j <w_j, G_j(x)>

dS/dx_k = sum_j (d^2 L / dx_k dx_j) w_j is a Hessian-vector product: ``hessian_vector`` takes
it by two backward passes (the first with create_graph=True). ``check_second_order`` runs
tinygrad_llm.testing.gradgradcheck (the same S against finite differences of the first-order
gradient, per element or along random directions) and returns dS/dx.
"""
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _first_order(fn, values, u, create_graph=False):
    leaves = [leaf(v) for v in values]
    out = fn(*leaves)
    seed = tg.tensor(u) if create_graph else u
    G = grad(out, leaves, grad_outputs=seed, create_graph=create_graph, allow_unused=True)
    return leaves, G


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


def check_second_order(fn, arrays, seed=0, max_elementwise=48, n_directions=4):
    """gradgradcheck of fn on float64 leaves made from ``arrays`` (second derivatives and
    the derivatives w.r.t. the upstream gradient, against finite differences of the first
    order); returns dS/dx of ``hessian_vector`` for further assertions."""
    assert gradgradcheck(fn, [leaf(a) for a in arrays], seed=seed,
                         max_elementwise=max_elementwise, n_directions=n_directions)
    return hessian_vector(fn, arrays, seed)[1]
