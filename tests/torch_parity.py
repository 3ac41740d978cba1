"""Shared helpers for the op-family tests: float64 gradchecks and parity with PyTorch.

``parity(ours, theirs, *arrays)`` runs the same function on tinygrad_llm and torch tensors made
from the same arrays, compares every output (values and dtype) and, for float outputs, the
gradients of every float input under one random upstream gradient per output.
"""
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm.testing import gradcheck


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check_grad(fn, *arrays):
    assert gradcheck(fn, [leaf(a) for a in arrays])


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def parity(ours, theirs, *arrays, grad=True, rtol=1e-10, atol=1e-12, seed=0):
    import torch
    arrays = [np.asarray(a) for a in arrays]
    needs = [grad and a.dtype.kind == "f" for a in arrays]
    mine = [tg.tensor(a, requires_grad=n) for a, n in zip(arrays, needs)]
    ref = [torch.tensor(a, requires_grad=n) for a, n in zip(arrays, needs)]
    out_m, out_r = _outputs(ours(*mine)), _outputs(theirs(*ref))
    assert len(out_m) == len(out_r)
    rng = np.random.default_rng(seed)
    loss_m, loss_r = 0, 0
    for m, r in zip(out_m, out_r):
        r_np = r.detach().numpy()
        assert tuple(m.shape) == tuple(r_np.shape), (m.shape, r_np.shape)
        assert np.dtype(m.dtype) == r_np.dtype, (m.dtype, r_np.dtype)
        np.testing.assert_allclose(m.data, r_np, rtol=rtol, atol=atol)
        if grad and m.requires_grad and r.requires_grad:
            g = rng.standard_normal(r_np.shape)
            loss_m = loss_m + (m * tg.tensor(g)).sum()
            loss_r = loss_r + (r * torch.tensor(g)).sum()
    if grad and not isinstance(loss_m, int):
        loss_m.backward()
        loss_r.backward()
        for t_m, t_r, n in zip(mine, ref, needs):
            if n:
                expected = t_r.grad.numpy() if t_r.grad is not None else np.zeros(t_m.shape)
                got = t_m.grad.data if t_m.grad is not None else np.zeros(t_m.shape)
                np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
    return out_m, out_r


def same_error(ours, theirs):
    """Both raise, with the same exception type; returns ours."""
    import pytest
    with pytest.raises(Exception) as ref:
        theirs()
    with pytest.raises(type(ref.value)) as mine:
        ours()
    return mine.value
