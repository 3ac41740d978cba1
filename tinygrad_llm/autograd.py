"""Reverse-mode automatic differentiation: the Function base class, grad mode and backward().

How the graph is built
----------------------
Every differentiable op is a subclass of ``Function`` with two methods written side by side:

    forward(self, *arrays)  -> output array     (raw NumPy/CuPy arrays in, array out)
    backward(self, grad)    -> one gradient per forward argument (None where there is none)

``Op.apply(*args)`` unwraps Tensor arguments to their arrays, calls ``forward`` and wraps the
result in a new Tensor whose ``_ctx`` is the Function instance. The instance remembers its
parent tensors, so the tensors and Functions form a DAG. ``backward()`` walks that DAG from the
output in reverse topological order, calling each node's ``backward`` with the gradient of the
loss with respect to that node's output (the vector-Jacobian product, VJP).

Saved values and in-place changes
---------------------------------
``forward`` keeps what ``backward`` needs with ``self.save_for_backward(*arrays)``. If a saved
array is the buffer of an input or of the output tensor, ``apply`` records that tensor's version
counter; any in-place change to the tensor before ``backward`` bumps the counter and backward
raises instead of silently using the modified values (PyTorch's rule).

Grad mode is the one global switch: ``with no_grad(): ...`` records no graph.
"""
import functools

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
    #   parents           the forward arguments (Tensor or None for constants), in order
    #   needs_input_grad  per argument: does it need a gradient?
    saved = ()
    _version_checks = ()
    _freed = False
    retained_output = None  # set by Tensor.retain_grad()
    _ctx_style = False      # True for PyTorch-style subclasses (see __init_subclass__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass whose forward is a @staticmethod taking ctx is written PyTorch's way: it
        # works on Tensors, and custom_function.py runs it. The library's own ops define
        # forward(self, *arrays) on raw arrays.
        forward = next(k.__dict__["forward"] for k in cls.__mro__ if "forward" in k.__dict__)
        cls._ctx_style = isinstance(forward, (staticmethod, classmethod))

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
        raw = _unwrap(cls, args)                   # tensors -> arrays, constants as they are
        ctx = cls()
        out = ctx.forward(*raw, **kwargs)
        if not _grad_enabled:                      # inference (no_grad): no graph at all
            return Tensor._wrap(out)
        needs = [isinstance(a, Tensor) and a.requires_grad for a in args]
        if not any(needs) or out.dtype.kind != "f":
            return Tensor._wrap(out)  # no graph: nothing needs a gradient (or ints came out)
        result = Tensor._wrap(out, ctx)
        ctx.parents = [a if isinstance(a, Tensor) else None for a in args]
        ctx.needs_input_grad = needs
        if ctx.saved:
            ctx._version_checks = _saved_versions(ctx.saved, args, result)
        return result

    def release(self):
        """Drop the saved arrays and the parents: called after backward unless retain_graph."""
        self.saved = ()
        self.parents = ()
        self._freed = True

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"


def _unwrap(fn_cls, args):
    """The forward arguments with each Tensor replaced by its array; all arrays must live on
    one device (NumPy or CuPy), else a clear error naming the op."""
    raw, device_type = [], None
    for a in args:
        if isinstance(a, Tensor):
            data = a.data
            if device_type is None:
                device_type = type(data)
            elif type(data) is not device_type:
                _raise_device_mix(fn_cls, args)
            raw.append(data)
        else:  # a constant: a Python number, an index, a dtype, ...
            raw.append(a)
    return raw


def _saved_versions(saved, args, result):
    """(tensor, version at save time) for each saved array that is a tensor's own buffer."""
    checks = []
    for arr in saved:
        if arr is result.data:
            checks.append((result, result._version[0]))
            continue
        for a in args:
            if isinstance(a, Tensor) and a.data is arr:
                checks.append((a, a._version[0]))
                break
    return tuple(checks)


def _raise_device_mix(cls, args):
    devices = [f"{a.device} {tuple(a.shape)}" for a in args if isinstance(a, Tensor)]
    raise TypeError(
        f"{cls.__name__}: expected all tensors on the same device, got " + ", ".join(devices)
        + "; move them with .to('cpu') or .to('cuda') first")


# ---------------------------------------------------------------------------------------------
# The backward pass
# ---------------------------------------------------------------------------------------------

def _topological_order(root_ctx):
    """Function nodes reachable from root_ctx, each after all nodes it depends on (inputs first),
    and {id(leaf): number of edges into it} for the leaves that have post-accumulate hooks.

    Iterative depth-first search, so graphs of any depth work (no recursion limit).
    """
    order, hooked = [], {}
    visited = set()
    stack = [(root_ctx, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if parent is None:
                continue
            if parent._ctx is None:
                if parent._grad_hooks and parent.requires_grad:
                    hooked[id(parent)] = hooked.get(id(parent), 0) + 1
            elif id(parent._ctx) not in visited:
                stack.append((parent._ctx, False))
    return order, hooked


def _check_versions(node):
    for t, version in node._version_checks:
        if t._version[0] != version:
            raise RuntimeError(
                f"one of the tensors needed for gradient computation has been modified by an "
                f"in-place operation: a tensor of shape {tuple(t.shape)} saved by {node} is at "
                f"version {t._version[0]}; expected version {version}. Use an out-of-place "
                f"operation, or .clone() the tensor before changing it.")


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into the ``.grad`` of every leaf that requires grad.

    ``grad`` is an array shaped like ``root``. Gradients of a tensor used several times are
    summed (the multivariate chain rule). A leaf with post-accumulate hooks gets its
    contributions summed first and added to its ``.grad`` once, when the last one has arrived;
    then its hooks run (data-parallel training starts averaging that gradient there). Unless
    ``retain_graph``, every node's saved arrays are released as soon as the node has been
    processed, so memory is freed during the walk.
    """
    root_ctx = root._ctx
    if root_ctx is None:  # a leaf: its gradient is the seed itself
        _accumulate_leaf(root, grad)
        return
    order, pending = _topological_order(root_ctx)  # pending: edges into leaves with hooks
    leaf_grads = {}                         # id(leaf) -> sum of its contributions so far
    grads = {id(root_ctx): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:  # no path from this node to the root carries a gradient
            if pending:
                for parent in node.parents:
                    if parent is not None and id(parent) in pending:
                        _hooked_contribution(parent, None, pending, leaf_grads)
            continue
        if node._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                "graph are freed when you call .backward(). Specify retain_graph=True if you "
                "need to backward through the graph a second time.")
        if node.retained_output is not None:
            node.retained_output._grad = Tensor._wrap(g)
        if node._version_checks:
            _check_versions(node)
        input_grads = node.backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, g_in, needed in zip(node.parents, input_grads, node.needs_input_grad):
            if not needed:
                continue
            if g_in is not None and g_in.shape != parent.data.shape:
                raise RuntimeError(
                    f"internal error: {node} returned a gradient of shape {g_in.shape} for an "
                    f"input of shape {parent.data.shape}")
            if parent._ctx is None:
                if parent._grad_hooks:
                    _hooked_contribution(parent, g_in, pending, leaf_grads)
                elif g_in is not None:
                    _accumulate_leaf(parent, g_in)
            elif g_in is not None:
                key = id(parent._ctx)
                if key in grads:
                    grads[key] = grads[key] + g_in  # new array: g_in may alias another grad
                else:
                    grads[key] = g_in
        if not retain_graph:
            node.release()


def _hooked_contribution(leaf, g_in, pending, leaf_grads):
    """A leaf with hooks: add one edge's gradient to its running sum, and when its last edge
    has arrived, accumulate the sum into .grad once and run the hooks."""
    key = id(leaf)
    if g_in is not None:
        leaf_grads[key] = leaf_grads[key] + g_in if key in leaf_grads else g_in
    pending[key] -= 1
    if pending[key] == 0:
        total = leaf_grads.pop(key, None)
        if total is not None:
            _accumulate_leaf(leaf, total)


def _accumulate_leaf(leaf, g):
    if not leaf.requires_grad:
        return
    xp = array_module(g)
    if leaf._grad is None:
        # Copy: backward functions may return the very array they received (add, reshape), and
        # a leaf's .grad must never alias another gradient that someone may change in place.
        grad = xp.empty(leaf.data.shape, dtype=leaf.data.dtype)
        grad[...] = g
        leaf._grad = Tensor._wrap(grad)
    else:
        # asarray: NumPy turns the sum of two 0-d arrays into a scalar, which has no .shape
        # to keep and cannot be updated in place by an optimizer
        leaf._grad.data = xp.asarray(leaf._grad.data + g)
    if leaf._grad_hooks:
        for hook in tuple(leaf._grad_hooks):
            hook(leaf)


# tensor.py imports this module, and Function.apply needs the Tensor class. The package
# __init__ imports this module first, so by this line Function exists and tensor.py can load.
from .tensor import Tensor  # noqa: E402
from . import custom_function as _custom  # noqa: E402
