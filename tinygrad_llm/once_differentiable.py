"""@once_differentiable: torch's decorator for a custom Function's backward that has no second
derivative (custom_function.py has the custom Functions themselves).

The decorated backward always runs without recording a graph. When the backward pass is
being recorded (create_graph=True), each gradient it returns goes through a ``_DelayedError``
node whose parents are the tensors that gradient really depends on, so that differentiating
it reaches the node, which raises (PyTorch's DelayedError), instead of silently treating the
gradient as a constant.
"""
import functools

import numpy as np

from . import autograd
from .backend import get_array_module
from .tensor import Tensor


def once_differentiable(fn):
    """torch's decorator for a backward that is not itself differentiable: it always runs
    without recording a graph, and when the backward pass is recorded (create_graph=True) each
    gradient it returns goes through a node that raises if it is ever differentiated."""
    @functools.wraps(fn)
    def wrapper(ctx, *grad_outputs):
        with autograd.no_grad():
            result = fn(ctx, *grad_outputs)
        if not autograd.is_grad_enabled():
            return result
        fn_cls = getattr(ctx, "_fn", None)           # a torch-style Function's ctx
        name = fn_cls.__name__ if fn_cls is not None else type(ctx).__name__
        candidates = [_anchor(p, grad_outputs) for p in getattr(ctx, "parents", ())]
        anchors = [t for t in candidates + list(grad_outputs)
                   if isinstance(t, Tensor) and t.requires_grad]
        if not anchors:
            return result
        single = not isinstance(result, tuple)
        marked = tuple(_DelayedError.apply(r, name, *anchors) if isinstance(r, Tensor) else r
                       for r in ((result,) if single else result))
        return marked[0] if single else marked
    return wrapper


def _anchor(parent, grad_outputs):
    """A parent as a Tensor to hang the graph on: itself, or for a node standing in for an
    input (autograd.Function's notes) a 0-d Tensor produced by that node."""
    if parent is None or isinstance(parent, Tensor):
        return parent
    like = next((g.data for g in grad_outputs if isinstance(g, Tensor)), None)
    xp = get_array_module(like) if like is not None else np
    return Tensor._wrap(xp.zeros(()), parent)


class _DelayedError(autograd.Function):
    """The identity on a gradient computed by a @once_differentiable backward; its parents are
    the tensors that gradient really depends on, so differentiating it reaches this node,
    which raises (PyTorch's DelayedError)."""

    def forward(self, g, name, *anchors):
        self.name = name
        return g

    def backward(self, grad):
        raise RuntimeError(f"trying to differentiate twice a function that was marked with "
                           f"@once_differentiable: {self.name}.backward computes its gradient "
                           f"without a graph, so it has no second derivative")
