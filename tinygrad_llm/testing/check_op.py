"""``check_op``: all the evidence for one op on one set of inputs, in one call.

    check_op(F.softmax, [x], kwargs=dict(dim=-1),
             ref=kernels.softmax_ref,                       # the NumPy formula
             twin=lambda x, dim: softmax_composite(x, dim), # the composite of primitive ops
             impls=("ref", "cpu"),                          # every kernel implementation
             torch_fn=lambda t, dim: torch.softmax(t, dim)) # PyTorch, where installed

For float64 inputs it checks, in order, and raises an AssertionError naming the check:

1. ``ref``: the forward equals the reference formula evaluated on the arrays;
2. gradcheck: the analytic gradient equals float64 central differences (testing.gradcheck);
3. ``twin``: value and gradients equal those of the composite twin;
4. ``impls``: each kernel implementation (the op takes ``impl=``) gives the same value and
   gradients as the first;
5. ``torch_fn``: value and gradients equal PyTorch's. PyTorch is never loaded by the library: the
   caller, who wrote torch_fn, has imported it (tests use pytest.importorskip("torch")).

Gradients are compared as vector-Jacobian products with one fixed random upstream gradient.
"""
import sys

import numpy as np

from ..tensor import Tensor
from .gradcheck import gradcheck

__all__ = ["check_op"]


def _leaves(arrays):
    return [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]


def _value_and_grads(fn, arrays, kwargs, seed=0):
    leaves = _leaves(arrays)
    out = fn(*leaves, **kwargs)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(Tensor(g))
    grads = [np.zeros_like(t.data) if t.grad is None else t.grad.data for t in leaves]
    return np.asarray(out.data), grads


def _same(what, got, want, rtol, atol):
    try:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    except AssertionError as e:
        raise AssertionError(f"check_op: {what} differs\n{e}") from None


def _compare(what, a, b, rtol, atol):
    (out_a, grads_a), (out_b, grads_b) = a, b
    _same(f"{what}: value", out_a, out_b, rtol, atol)
    for k, (ga, gb) in enumerate(zip(grads_a, grads_b)):
        _same(f"{what}: gradient of input {k}", ga, gb, rtol, atol)


def check_op(fn, inputs, *, kwargs=None, ref=None, twin=None, impls=(), torch_fn=None,
             rtol=1e-9, atol=1e-11, gradcheck_kwargs=None):
    """Run the checks of the module docstring for ``fn(*tensors, **kwargs)``; returns True.

    inputs: arrays (made float64 leaf tensors); kwargs: passed to every function (ref and
    twin too, except impl=); ref: a function of the arrays; torch_fn: a function of torch
    tensors.
    """
    kwargs = dict(kwargs or {})
    arrays = [np.asarray(a, dtype=np.float64) for a in inputs]
    ours = _value_and_grads(fn, arrays, kwargs)
    if ref is not None:
        _same("forward against the reference", ours[0],
              np.asarray(ref(*[a.copy() for a in arrays], **kwargs)), rtol, atol)
    if not gradcheck(lambda *t: fn(*t, **kwargs), _leaves(arrays), **(gradcheck_kwargs or {})):
        raise AssertionError("check_op: gradcheck failed")
    if twin is not None:
        _compare("the composite twin", ours, _value_and_grads(twin, arrays, kwargs), rtol,
                 atol)
    for impl in impls:
        _compare(f"impl={impl!r}", ours,
                 _value_and_grads(fn, arrays, dict(kwargs, impl=impl)), rtol, atol)
    if torch_fn is not None:
        # the caller's torch_fn comes from an imported torch; the library never imports it
        torch = sys.modules.get("torch")
        if torch is None:
            raise ValueError("check_op: torch_fn is given but torch is not imported")
        leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
        out = torch_fn(*leaves, **kwargs)
        g = np.random.default_rng(0).standard_normal(tuple(out.shape))
        out.backward(torch.tensor(g))
        theirs = (out.detach().numpy(), [np.zeros_like(a) if t.grad is None else
                                         t.grad.numpy() for a, t in zip(arrays, leaves)])
        _compare("PyTorch", ours, theirs, rtol, atol)
    return True
