"""Shared by tests/test_double_backward_*.py: the second derivative of an op against finite
differences (tinygrad_llm.testing.gradgradcheck) and against PyTorch.

For ``fn`` with output y, upstream gradient g and weights w, both sides compute

    G = d<g, y>/dx            (autograd.grad with create_graph=True: a graph of its own)
    H = d<w, G>/d(x, g)       (a second backward pass through that graph)

so H holds the Hessian-vector products of every input pair and the Jacobian-vector product
J w (the derivative of the backward pass with respect to g).
"""
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck


def leaves(arrays):
    return [tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]


def check_gradgrad(fn, *arrays):
    """gradgradcheck of fn on float64 leaves made from ``arrays``."""
    assert gradgradcheck(fn, leaves(arrays))


def torch_second_derivatives(fn_torch, arrays, seed=0):
    """(G, H) of ``fn_torch`` on float64 torch leaves (see the module docstring)."""
    import torch
    xs = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn_torch(*xs)
    g, w = _upstream(out.shape, [x.shape for x in xs], seed)
    g_t = torch.tensor(g, requires_grad=True)
    G = torch.autograd.grad(out, xs, g_t, create_graph=True)
    total = sum((Gi * torch.tensor(wi)).sum() for Gi, wi in zip(G, w))
    H = torch.autograd.grad(total, xs + [g_t], allow_unused=True)
    return ([Gi.detach().numpy() for Gi in G],
            [np.zeros(v.shape) if h is None else h.numpy() for h, v in zip(H, xs + [g_t])])


def our_second_derivatives(fn, arrays, seed=0):
    """(G, H) of ``fn`` on float64 tinygrad_llm leaves (see the module docstring)."""
    xs = leaves(arrays)
    out = fn(*xs)
    g, w = _upstream(out.shape, [x.shape for x in xs], seed)
    g_t = tg.tensor(g, requires_grad=True)
    G = grad(out, xs, g_t, create_graph=True)
    total = sum((Gi * tg.tensor(wi)).sum() for Gi, wi in zip(G, w))
    H = grad(total, xs + [g_t], allow_unused=True)
    return ([Gi.data for Gi in G],
            [np.zeros(v.shape) if h is None else h.data for h, v in zip(H, xs + [g_t])])


def _upstream(out_shape, in_shapes, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(tuple(out_shape)),
            [rng.standard_normal(tuple(s)) for s in in_shapes])


def check_torch_parity(fn, fn_torch, *arrays, rtol=1e-10, atol=1e-12):
    """First and second derivatives of fn equal torch's for the same g and w."""
    G_ours, H_ours = our_second_derivatives(fn, arrays)
    G_torch, H_torch = torch_second_derivatives(fn_torch, arrays)
    for ours, theirs in zip(G_ours + H_ours, G_torch + H_torch):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
