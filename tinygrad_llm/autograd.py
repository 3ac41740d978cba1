"""Reverse-mode automatic differentiation: the Function base class, grad mode and backward().

How the graph is built
----------------------
Every differentiable op is a subclass of ``Function`` with two methods written side by side:

    forward(self, *arrays)  -> output array     (raw NumPy/CuPy arrays in, array out)
    backward(self, grad)    -> one gradient per forward argument (None where there is none)

``Op.apply(*args)`` unwraps Tensor arguments to their arrays, calls ``forward`` and wraps the
result in a new Tensor whose ``_ctx`` is the Function instance. The instance remembers its
parents, one per argument, so the Functions (the nodes) form a DAG with the leaf tensors at
its inputs. ``backward()`` walks that DAG from the output in reverse topological order,
calling each node's ``backward`` with the gradient of the loss with respect to that node's
output (the vector-Jacobian product, VJP).

A parent is the input Tensor when it is a leaf or when the op saved its array; otherwise it
is the node that produced the input, standing in for it. So the graph holds an intermediate
array only while some backward formula needs it, as PyTorch's does: the output of a Linear
read only by a residual add is freed as soon as the forward pass drops it.

Saved values and in-place changes
---------------------------------
``forward`` keeps what ``backward`` needs with ``self.save_for_backward(*arrays)``. If a saved
array is the buffer of an input or of the output tensor, ``apply`` records that tensor's version
counter; any in-place change to the tensor before ``backward`` bumps the counter and backward
raises instead of silently using the modified values (PyTorch's rule).

Grad mode is the one global switch: ``with no_grad(): ...`` records no graph.
"""
import functools

import numpy as np

from .kernels.fastnp import array_module

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for its block."""

    enabled = True

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Record no graph inside the block: results have requires_grad=False."""

    enabled = False


class enable_grad(_GradMode):
    """Record the graph again inside a no_grad block."""

    enabled = True


class set_grad_enabled(_GradMode):
    """``with set_grad_enabled(False):`` is no_grad, ``(True)`` enable_grad (PyTorch's)."""

    def __init__(self, mode=True):
        self.enabled = bool(mode)

    def __call__(self, fn):
        mode = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(set_grad_enabled):
    """PyTorch's inference_mode: here the same as no_grad (no graph is recorded; the tensors
    made inside can later be used in a graph, where PyTorch would refuse)."""

    def __init__(self, mode=True):
        super().__init__(not mode)


class Function:
    """Base class of every differentiable op (see the module docstring)."""

    # Set on the instance by apply() when a graph is recorded:
    #   parents           per forward argument, in order: None for a constant, else the
    #                     input Tensor or the node standing in for it (module docstring; an
    #                     op with a twin keeps the Tensors, which the twin recomputes from)
    #   needs_input_grad  per argument: does it need a gradient?
    #   _out_shape        its output's shape (for when the node stands in for its output)
    #   _out_id           id() of its output, when it saved that output (backprop.py)
    saved = ()
    _out_shape = _out_id = None
    _stands_in = True   # False for a PyTorch-style Function's node: it may have several outputs
    _version_checks = ()
    constants = ()          # saved arguments that were arrays, not Tensors
    _freed = False
    retained_output = None  # set by Tensor.retain_grad()
    _ctx_style = False      # True for PyTorch-style subclasses (see __init_subclass__)
    # A fused op's composite of primitive ops, called like apply: its gradients are taken
    # through it when the backward pass itself is differentiated (create_graph=True)
    twin = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass whose forward is a @staticmethod taking ctx is written PyTorch's way: it
        # works on Tensors, and custom_function.py runs it. The library's own ops define
        # forward(self, *arrays) on raw arrays.
        forward = next(k.__dict__["forward"] for k in cls.__mro__ if "forward" in k.__dict__)
        cls._ctx_style = isinstance(forward, (staticmethod, classmethod))

    # A node standing in for its output among another node's parents answers like that
    # output would: a non-leaf (its _ctx is itself) that requires grad.
    requires_grad = True

    @property
    def _ctx(self):
        return self

    def forward(self, *args):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls._ctx_style:
            return _custom.apply(cls, *args, **kwargs)
        raw, parents, needs, nodes = _unwrap(cls, args)  # tensors -> arrays (see _unwrap)
        ctx = cls()
        out = ctx.forward(*raw, **kwargs)
        if out.__class__ is not np.ndarray and isinstance(out, np.generic):
            out = _array_of_scalar(ctx, out)       # NumPy's ufuncs give scalars for 0-d inputs
        if not _grad_enabled:                      # inference (no_grad): no graph at all
            return Tensor._wrap(out)
        if True not in needs or out.dtype.kind != "f":
            return Tensor._wrap(out)  # no graph: nothing needs a gradient (or ints came out)
        result = Tensor._wrap(out, ctx)
        ctx._out_shape = out.shape
        ctx.needs_input_grad = needs
        if ctx.saved:
            ctx._version_checks = _saved_versions(ctx, ctx.saved, args, result)
        if cls.twin is not None:                   # kept to recompute through the twin
            ctx.args, ctx.kwargs = args, kwargs
            parents = [a if isinstance(a, Tensor) else None for a in args]
        elif nodes and ctx.saved:                  # some parent is a node (see the notes)
            _put_back_saved_inputs(parents, args, ctx.saved)
        ctx.parents = parents
        return result

    def release(self):
        """Drop the saved arrays and the parents: called after backward unless retain_graph."""
        self.saved = ()
        self.parents = ()
        if self.twin is not None:
            self.args = self.kwargs = None
        self._freed = True

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"


def _array_of_scalar(ctx, out):
    """A 0-d array for a NumPy scalar output, also in place of it among the saved values: a
    saved output must be the very array its Tensor holds (for the version check and for the
    recorded backward pass, which swaps it for that Tensor)."""
    arr = np.asarray(out)
    if ctx.saved:
        ctx.saved = tuple(arr if s is out else s for s in ctx.saved)
    return arr


def records_graph(g):
    """True when a backward formula was handed a Tensor: the backward pass is being recorded
    (create_graph=True, see backprop.py); False for the raw arrays of a first-order pass."""
    return isinstance(g, Tensor)


def _unwrap(fn_cls, args):
    """Per forward argument: its array (a Tensor's data, or the constant itself), its parent
    (None for a constant, the Tensor for a leaf, else the node that produced it: apply puts
    back the Tensor of an input whose array the op saves) and whether it needs a gradient;
    and whether any parent is a node. All arrays must live on one device (NumPy or CuPy),
    else a clear error naming the op."""
    raw, parents, needs, device_type, nodes = [], [], [], None, False
    for a in args:
        if isinstance(a, Tensor):
            data = a.data
            if data.__class__ is not device_type:
                if device_type is not None:
                    _raise_device_mix(fn_cls, args)
                device_type = data.__class__
            raw.append(data)
            needs.append(a.requires_grad)
            node = a._ctx
            if node is None or not node._stands_in:
                parents.append(a)
            else:
                parents.append(node)
                nodes = True
        else:  # a constant: a Python number, an index, a dtype, ...
            raw.append(a)
            parents.append(None)
            needs.append(False)
    return raw, parents, needs, nodes


def _saved_versions(ctx, saved, args, result):
    """(version counter, its value at save time, shape) for each saved array that is a
    tensor's own buffer. The counter, not the tensor: a node that held its own output would
    form a reference cycle (output -> node -> output), and the output's memory would wait
    for the garbage collector. A saved argument that is an array, not a Tensor, is noted in
    ctx.constants: a recorded backward pass (backprop.py) uses it as the constant it is, and
    a saved output's id in ctx._out_id (for when no Tensor of it is left)."""
    checks = []
    for arr in saved:
        if arr is result.data:
            checks.append((result._version, result._version[0], arr.shape))
            ctx._out_id = id(arr)
            continue
        for a in args:
            if a is arr:
                ctx.constants += (arr,)
                break
            if isinstance(a, Tensor) and a.data is arr:
                checks.append((a._version, a._version[0], arr.shape))
                break
    return tuple(checks)


def _put_back_saved_inputs(parents, args, saved):
    """The Tensor, not its node, as the parent of each input whose array the op saved: the
    recorded backward pass (backprop.py) finds a saved input's Tensor among the parents."""
    for i, p in enumerate(parents):
        if p is not None and p._ctx is p:
            data = args[i].data
            for s in saved:
                if s is data:
                    parents[i] = args[i]
                    break


def _raise_device_mix(cls, args):
    devices = [f"{a.device} {tuple(a.shape)}" for a in args if isinstance(a, Tensor)]
    raise TypeError(
        f"{cls.__name__}: expected all tensors on the same device, got " + ", ".join(devices)
        + "; move them with .to('cpu') or .to('cuda') first")


# ---------------------------------------------------------------------------------------------
# Differentiating: Tensor.backward() and autograd.grad() (the walk itself is in backprop.py)
# ---------------------------------------------------------------------------------------------

def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into ``.grad`` of every leaf that requires grad (or only of
    ``inputs``): ``torch.autograd.backward``. ``Tensor.backward`` calls this."""
    roots, seeds = _roots_and_seeds(tensors, grad_tensors, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_tensor_list(inputs, "inputs")
        if not inputs:
            raise RuntimeError("backward(inputs=...): inputs cannot be empty")
    _backprop.run_backward(roots, seeds, retain_graph=retain_graph, create_graph=create_graph,
                           inputs=inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    ``grad_outputs`` is the vector of the vector-Jacobian product (ones for a scalar output).
    With ``create_graph=True`` the gradients carry a graph and can be differentiated again:
    ``gx, = grad(f(x), x, create_graph=True); gxx, = grad(gx.sum(), x)`` is a second
    derivative. An input the outputs do not depend on is an error unless ``allow_unused``
    (then its gradient is None, or zeros with ``materialize_grads``).
    """
    single = isinstance(inputs, Tensor)
    inputs = _as_tensor_list(inputs, "inputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    roots, seeds = _roots_and_seeds(outputs, grad_outputs, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    found = _backprop.run_backward(roots, seeds, retain_graph=retain_graph,
                                   create_graph=create_graph, inputs=inputs, accumulate=False)
    result = []
    for t, g in zip(inputs, found):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the "
                    "graph. Set allow_unused=True if this is the desired behavior.")
            if materialize_grads:
                g = array_module(t.data).zeros(t.shape, dtype=t.dtype)
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        result.append(g)
    return (result[0],) if single else tuple(result)


def unit_seed(out):
    """d(out)/d(out) = 1 for a one-element output, as an array shaped like it (np.array(1) and
    a reshape: np.ones costs 0.7 us more, once per training step)."""
    seed = array_module(out.data).array(1, dtype=out.dtype)
    return seed.reshape(out.shape) if out.data.ndim else seed


def _as_tensor_list(xs, what):
    xs = [xs] if isinstance(xs, Tensor) else list(xs)
    for x in xs:
        if not isinstance(x, Tensor):
            raise TypeError(f"{what} must be Tensors, got {type(x).__name__}")
    return xs


def _roots_and_seeds(outputs, grad_outputs, create_graph):
    """The output tensors and one seed gradient each: an array for first order, a Tensor
    (maybe itself requiring grad) when the backward pass is recorded."""
    outputs = _as_tensor_list(outputs, "outputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):      # one Tensor or array
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad_outputs has {len(grad_outputs)} entries for "
                           f"{len(outputs)} outputs")
    roots, seeds = [], []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn: differentiate a result of ops on tensors created with "
                               "requires_grad=True")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this tensor has "
                    f"shape {tuple(out.shape)}: pass a gradient of that shape")
            g = unit_seed(out)
        else:
            graph_seed = create_graph and isinstance(g, Tensor)
            g = g if graph_seed else (g.data if isinstance(g, Tensor) else g)
            if not graph_seed:
                g = array_module(out.data).asarray(g, dtype=out.dtype)
            if tuple(g.shape) != tuple(out.shape):
                raise ValueError(
                    f"Mismatch in shape: gradient has a shape of {tuple(g.shape)} and output "
                    f"has a shape of {tuple(out.shape)}")
        if create_graph and not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        roots.append(out)
        seeds.append(g)
    return roots, seeds


# tensor.py imports this module, and Function.apply needs the Tensor class. The package
# __init__ imports this module first, so by this line Function exists and tensor.py can load.
from .tensor import Tensor  # noqa: E402
from . import custom_function as _custom  # noqa: E402
from . import backprop as _backprop  # noqa: E402
