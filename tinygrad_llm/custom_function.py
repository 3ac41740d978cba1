"""torch.autograd.Function: a user-written op over Tensors, with its own backward.

    class Exp(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):                 # Tensors in, Tensor(s) out (no graph recorded)
            y = x.exp()
            ctx.save_for_backward(y)         # what backward needs, kept until backward
            return y

        @staticmethod
        def backward(ctx, grad_output):      # one gradient per output, as Tensors
            y, = ctx.saved_tensors
            return grad_output * y           # one gradient (or None) per forward input

    y = Exp.apply(x)                         # y.grad_fn is the ctx: <ExpBackward>

Two kinds of Function live behind one name. The library's own ops subclass
``tinygrad_llm.autograd.Function`` with *instance* methods ``forward(self, *arrays)`` /
``backward(self, grad)`` over raw arrays (see autograd.py). A subclass whose ``forward`` is a
``@staticmethod`` taking ``ctx`` is torch-style: ``Function.apply`` sees the staticmethod and
hands the call to :func:`apply` below. The ctx is a node of the same graph (a subclass of the
array-level Function), so backward(), retain_graph, hooks and the in-place version checks all
work unchanged; its array-level ``backward`` wraps the incoming gradient in a Tensor, calls the
user's ``backward`` and checks what comes back.

The ctx, as in PyTorch:
    ctx.save_for_backward(*tensors)      keep tensors (inputs or outputs) for backward
    ctx.saved_tensors                    them again, in backward; an in-place change to one
                                         since it was saved is a RuntimeError
    ctx.needs_input_grad                 one bool per forward argument
    ctx.mark_non_differentiable(*outs)   outputs that get no gradient (argmax indices, masks)
    ctx.set_materialize_grads(False)     None instead of zeros for outputs without a gradient
    ctx.<anything> = value               keep non-tensor values (shapes, constants)
The newer form ``forward(*args)`` without ctx plus ``setup_context(ctx, inputs, output)``
works too. Keyword arguments of ``apply`` reach forward but are never differentiated.

Gradients of gradients (PyTorch's semantics): in a first-order backward pass the user's
``backward`` runs without recording a graph. When the backward pass is itself recorded
(``create_graph=True``) it runs with grad mode on and gets its gradients as Tensors with a
graph; ``saved_tensors`` are then the inputs (with their graph) and the outputs as graph
tensors (whose graph leads back through this very node), so a backward written with
differentiable Tensor ops can be differentiated again. A saved tensor that is neither an input
nor an output was made in forward without a graph: it is a constant there (as in PyTorch). A
backward decorated with ``@once_differentiable`` runs without a graph even then, and its
gradients raise a clear error when something tries to differentiate them.

Several outputs: backward receives one gradient per output (zeros for outputs that were not
used). Inside the graph they are one node: the differentiable outputs are packed into one
flat array and each returned Tensor is a slice of it, so the engine (one output per node)
sums their gradients into the packed array before calling backward once.
"""

import numpy as np

from . import autograd
from .autograd import records_graph
from .backend import device_of, get_array_module
from .once_differentiable import once_differentiable  # noqa: F401  (torch's place for it)
from .tensor import Tensor


def is_ctx_style(cls):
    """True when ``cls.forward`` is a static (or class) method: a torch-style Function."""
    for klass in cls.__mro__:
        if "forward" in klass.__dict__:
            return isinstance(klass.__dict__["forward"], (staticmethod, classmethod))
    return False


class FunctionCtx(autograd.Function):
    """The ctx of one call of a torch-style Function, and its node in the graph."""

    _stands_in = False          # it may have several outputs (autograd.Function's notes)

    def __init__(self, fn_cls):
        self._fn = fn_cls
        self._saved_tensors = ()
        self._non_differentiable = set()
        self._materialize_grads = True
        self._saved_outputs = {}
        self.needs_input_grad = ()

    def __repr__(self):
        return f"<{self._fn.__name__}Backward>"

    # ----- the ctx API -----------------------------------------------------------------------
    def save_for_backward(self, *tensors):
        for k, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save Tensors (or None), but "
                                f"argument {k} is of type {type(t).__name__}; keep other "
                                f"values as attributes of ctx")
        self._saved_tensors = tensors

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Specify retain_graph=True if you "
                "need to backward through the graph a second time.")
        return self._saved_tensors

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self._materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError(
            f"{self._fn.__name__}: in-place custom Functions (ctx.mark_dirty) are not "
            f"supported; return a new tensor from forward instead of modifying an input")

    # ----- the graph node --------------------------------------------------------------------
    def backward(self, grad):
        """Array-level backward called by the engine: the user's backward, checked. ``grad``
        is a Tensor when the backward pass is recorded (create_graph=True, module docstring)."""
        if records_graph(grad):
            return self._recorded_backward(grad)
        grads_out = self._output_grads(grad)
        with autograd.no_grad():
            result = self._fn.backward(self, *grads_out)
        return self._input_grads(result)

    def _recorded_backward(self, grad):
        """The user's backward with grad mode on, on graph tensors; returns Tensors."""
        saved = self._saved_tensors
        if self._saved_outputs:
            # self.saved holds the output's array: the engine has swapped it for the output
            # Tensor, whose graph goes through this node (packed: each output is a slice of it)
            (out,) = self.saved
            self._saved_tensors = tuple(
                self._graph_output(out, self._saved_outputs[k]) if k in self._saved_outputs
                else t for k, t in enumerate(saved))
        try:
            with autograd.enable_grad():
                result = self._fn.backward(self, *self._output_grads(grad))
        finally:
            self._saved_tensors = saved
        return self._input_grads(result, recorded=True)

    def _graph_output(self, out, i):
        if self._packed is None:
            return out
        for j, start, _, shape, dtype in self._packed:
            if j == i:
                return _Unpack.apply(out, start, shape, dtype)

    def release(self):
        super().release()
        self._saved_tensors = ()

    def _output_grads(self, grad):
        """One Tensor (or None) per forward output, from the node's (maybe packed) gradient."""
        per_output = {}
        if self._packed is None:
            per_output[self._diff[0]] = grad if records_graph(grad) else Tensor._wrap(grad)
        else:
            for i, start, size, shape, dtype in self._packed:
                per_output[i] = (_Unpack.apply(grad, start, shape, dtype) if records_graph(grad)
                                 else Tensor._wrap(_slice_out(grad, start, shape, dtype)))
        grads = []
        for i, meta in enumerate(self._outputs):
            if i in per_output:
                grads.append(per_output[i])
            elif meta is not None and self._materialize_grads:
                shape, dtype, xp = meta
                grads.append(Tensor._wrap(xp.zeros(shape, dtype=dtype)))
            else:
                grads.append(None)
        return grads

    def _input_grads(self, result, recorded=False):
        """The arrays for the engine (Tensors when the backward pass is recorded): one per
        forward argument, checked, summed down to the input's shape and cast to its dtype."""
        name = f"{self._fn.__name__}Backward"
        result = result if isinstance(result, tuple) else (result,)
        n = len(self.parents)
        if len(result) < n or any(r is not None for r in result[n:]):
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(result)})")
        out = []
        for i, (parent, g) in enumerate(zip(self.parents, result[:n])):
            if parent is None:
                if g is not None:
                    raise RuntimeError(f"function {name} returned a gradient different than "
                                       f"None at position {i + 1}, but the corresponding "
                                       f"forward input was not a Tensor")
                out.append(None)
                continue
            if g is None or not self.needs_input_grad[i]:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(f"function {name} returned a {type(g).__name__} at position "
                                f"{i + 1}; backward must return Tensors (or None)")
            if g.device != parent.device:
                raise RuntimeError(f"function {name} returned a gradient on {g.device} at "
                                   f"position {i + 1} for an input on {parent.device}")
            g = _sum_to(g if recorded else g.data, tuple(parent.shape), name, i)
            out.append(_as_dtype(g, parent.dtype))
        return tuple(out)


def _sum_to(grad, shape, name, i):
    """``grad`` summed down to ``shape`` when ``shape`` broadcasts to it (as torch accepts);
    a RuntimeError naming both shapes otherwise."""
    if tuple(grad.shape) == shape:
        return grad
    try:                                   # does shape broadcast to grad's shape?
        ok = np.broadcast_shapes(shape, grad.shape) == tuple(grad.shape)
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                           f"{list(grad.shape)} but expected shape compatible with "
                           f"{list(shape)}")
    xp = get_array_module(grad)
    extra = grad.ndim - len(shape)
    grad = xp.sum(grad, axis=tuple(range(extra))) if extra else grad
    stretched = tuple(k for k, n in enumerate(shape) if n == 1 and grad.shape[k] != 1)
    grad = xp.sum(grad, axis=stretched, keepdims=True) if stretched else grad
    return xp.asarray(grad)


def _as_dtype(g, dtype):
    if g.dtype == dtype:
        return g
    return get_array_module(g).astype(g, dtype) if records_graph(g) else g.astype(dtype)


def _slice_out(packed, start, shape, dtype):
    """packed[start:start + size] as an array of ``shape`` and ``dtype`` (a copy)."""
    size = int(np.prod(shape))
    return packed[start:start + size].reshape(shape).astype(dtype)


def _place_in(g, start, packed_shape, dtype):
    """Zeros of ``packed_shape`` with g, flattened, at [start, start + g.size): the transpose
    of _slice_out."""
    full = get_array_module(g).zeros(packed_shape, dtype=dtype)
    full[start:start + g.size] = g.reshape(-1)
    return full


class _Unpack(autograd.Function):
    """Output ``k`` of a multi-output custom Function: a slice of the node's packed array.

    out = packed[start:start + size].reshape(shape);   dpacked = zeros, dout at the slice
    The two are each other's transpose: _Pack is the same pair the other way round, so the
    gradient of either, when recorded (create_graph=True), is the other one applied.
    """

    def forward(self, packed, start, shape, dtype):
        self.start, self.packed_shape, self.packed_dtype = start, packed.shape, packed.dtype
        return _slice_out(packed, start, shape, dtype)

    def backward(self, grad):
        if records_graph(grad):
            dpacked = _Pack.apply(grad, self.start, self.packed_shape, self.packed_dtype)
        else:
            dpacked = _place_in(grad, self.start, self.packed_shape, self.packed_dtype)
        return dpacked, None, None, None


class _Pack(autograd.Function):
    """g placed at [start, start + size) of a zero packed array: the transpose of _Unpack."""

    def forward(self, g, start, packed_shape, dtype):
        self.start, self.shape, self.dtype = start, g.shape, g.dtype
        return _place_in(g, start, packed_shape, dtype)

    def backward(self, grad):
        if records_graph(grad):
            dg = _Unpack.apply(grad, self.start, self.shape, self.dtype)
        else:
            dg = _slice_out(grad, self.start, self.shape, self.dtype)
        return dg, None, None, None


def _run_forward(fn_cls, ctx, args, kwargs):
    with autograd.no_grad():
        if hasattr(fn_cls, "setup_context"):              # forward(*args) + setup_context
            outputs = fn_cls.forward(*args, **kwargs)
            fn_cls.setup_context(ctx, args, outputs)
        else:
            outputs = fn_cls.forward(ctx, *args, **kwargs)
    return outputs


def apply(fn_cls, *args, **kwargs):
    """Run a torch-style Function: forward without a graph, then one graph node (the ctx)
    whose parents are the Tensor arguments (see the module docstring)."""
    ctx = FunctionCtx(fn_cls)
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx.needs_input_grad = needs
    outputs = _run_forward(fn_cls, ctx, args, kwargs)
    single = not isinstance(outputs, tuple)
    outs = (outputs,) if single else outputs
    diff = [i for i, o in enumerate(outs)
            if isinstance(o, Tensor) and o.dtype.kind == "f"
            and id(o) not in ctx._non_differentiable]
    if not (autograd.is_grad_enabled() and any(needs) and diff):
        return outputs                                  # nothing to differentiate: no node
    ctx.parents = [a if isinstance(a, Tensor) else None for a in args]
    ctx._outputs = [(o.shape, o.dtype, get_array_module(o.data)) if isinstance(o, Tensor)
                    else None for o in outs]
    ctx._diff = diff
    ctx._version_checks = tuple((t._version, t._version[0], t.shape)
                                for t in ctx._saved_tensors if t is not None)
    # saved tensors that are outputs: {position in saved_tensors: output index}
    ctx._saved_outputs = {k: i for k, t in enumerate(ctx._saved_tensors)
                          for i, o in enumerate(outs) if t is not None and t is o}
    results = [o.detach() if isinstance(o, Tensor) and o.requires_grad else o for o in outs]
    if len(diff) == 1:
        ctx._packed = None
        i = diff[0]
        results[i] = Tensor._wrap(outs[i].data, ctx)
        results[i]._version = outs[i]._version          # an alias of what forward returned
        if ctx._saved_outputs:
            ctx.saved = (results[i].data,)      # for the engine: create_graph swaps it in
    else:
        _check_one_device(fn_cls, [outs[i] for i in diff])
        xp = get_array_module(outs[diff[0]].data)
        dtype = np.result_type(*[outs[i].dtype for i in diff])
        flat = [outs[i].data.reshape(-1).astype(dtype, copy=False) for i in diff]
        packed = Tensor._wrap(xp.concatenate(flat), ctx)
        if ctx._saved_outputs:
            ctx.saved = (packed.data,)
        ctx._packed, start = [], 0
        for i in diff:
            shape, out_dtype = tuple(outs[i].shape), outs[i].dtype
            ctx._packed.append((i, start, outs[i].data.size, shape, out_dtype))
            results[i] = _Unpack.apply(packed, start, shape, out_dtype)
            start += outs[i].data.size
    return results[0] if single else tuple(results)


def _check_one_device(fn_cls, tensors):
    devices = {device_of(t.data) for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"{fn_cls.__name__}: the outputs of forward are on several devices "
                           f"({sorted(devices)}); return them on one")


class Function:
    """A base for torch-style Functions that works whatever autograd.Function does
    (``tinygrad_llm.autograd.Function`` is the name to use; see the module docstring)."""

    @classmethod
    def apply(cls, *args, **kwargs):
        return apply(cls, *args, **kwargs)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function must define @staticmethod forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a custom Function must define @staticmethod backward")


__all__ = ["Function", "FunctionCtx", "apply", "is_ctx_style", "once_differentiable"]
