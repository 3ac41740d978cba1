"""The backward pass: from the outputs back to the inputs, once or twice.

``run_backward`` walks the graph that ``Function.apply`` recorded in reverse topological order.
Each node receives the gradient of the outputs with respect to its own output (summed over all
its consumers: the multivariate chain rule) and its ``backward`` turns it into one gradient per
input (a vector-Jacobian product, VJP).

First order (create_graph=False): gradients are raw NumPy/CuPy arrays and no graph is recorded.

Higher order (create_graph=True): gradients are Tensors and the walk runs with grad mode on, so
every VJP is itself recorded and can be differentiated again. The op's backward formula is the
same code: it is written against ``xp = array_module(g)``, which for a Tensor ``g`` is
``tensor_namespace`` (NumPy's function names over differentiable Tensor ops), and its saved
arrays are swapped for the Tensors they belong to (an input, or the output) for the call. Arrays
passed in as constants stay constants; any other saved *float* array (an intermediate of the
forward) would silently become a constant, so it is an error instead.
An op whose backward is a fused kernel declares a ``twin`` (its composite of primitive ops):
its input gradients are then taken through the twin, recomputed on the same inputs.

    x ──▶ [Tanh] ──▶ y ──▶ [Sum] ──▶ L            first backward (create_graph=True):
                                                  dL/dx = g * (1 - y*y)   recorded as
    g ──▶ [Mul] ◀── (1 - y*y) ◀── [Mul] ◀── y     Tensor ops on g and y, whose graph
                                                  reaches x again through y's [Tanh] node

The forward graph must then survive the first backward (the new graph goes through its
tensors), which is why ``retain_graph`` defaults to ``create_graph``.
"""
from sys import getrefcount

import numpy as np

from . import autograd
from .kernels.fastnp import POOLED_BYTES as _POOLED_BYTES, array_module, memory_is_private
from .kernels.fastnp import add as _sum_of_gradients


def run_backward(roots, seeds, *, retain_graph=False, create_graph=False, inputs=None,
                 accumulate=True):
    """Propagate ``seeds`` (one gradient per root) back through the graph.

    accumulate=True (``Tensor.backward``): add the gradients into ``.grad`` of every leaf that
    requires grad, or only of ``inputs`` when given. accumulate=False (``autograd.grad``): touch
    no ``.grad``; return the gradient of each of ``inputs`` (None where no path leads to it).
    """
    targets = _Targets(inputs)
    grads = {}                                      # node -> gradient of its output
    for root, seed in zip(roots, seeds):
        if root._ctx is None:                       # a leaf root: its gradient is the seed
            targets.deliver_to_leaf(root, seed, accumulate)
        else:
            key = root._ctx
            grads[key] = grads[key] + seed if key in grads else seed
    root_ctxs = [r._ctx for r in roots if r._ctx is not None]
    if root_ctxs:
        if create_graph:                  # every VJP below is recorded as Tensor ops
            with autograd.enable_grad():
                _walk(root_ctxs, grads, targets, retain_graph, accumulate, roots)
        else:
            _walk(root_ctxs, grads, targets, retain_graph, accumulate, None)
    return targets.results()


def backward_from(root, seed, retain_graph):
    """``loss.backward()``, the common case: first order, into every leaf's ``.grad``."""
    _walk((root._ctx,), {root._ctx: seed}, _EVERY_LEAF, retain_graph, True, None)


def _walk(root_ctxs, grads, targets, retain_graph, accumulate, recorded_roots):
    """The nodes in reverse topological order, each turning its output's gradient into its
    inputs' gradients. ``recorded_roots``: the output tensors when the walk is recorded
    (create_graph=True), else None."""
    order, pending = _topological_order(root_ctxs)
    outputs = None if recorded_roots is None else _output_tensors(recorded_roots, order)
    if not accumulate:                               # autograd.grad runs no hooks
        pending = {}
    elif targets.inputs is not None:
        pending = {k: n for k, n in pending.items() if k in targets.leaves}
    every_leaf = accumulate and targets.inputs is None
    if not every_leaf:                  # only the paths that lead to the inputs are walked
        needed, at_node = targets.needed_nodes(order), targets.at_node
    sums = {}                                        # leaf with hooks -> gradient so far
    for node in reversed(order):
        g = grads.pop(node, None)
        if g is None:   # nothing flows through this node: leaves with hooks still count the edge
            _skip_hooked_edges(node, pending, sums)
            continue
        if node._freed:
            _raise_freed()
        if not every_leaf:
            if node in at_node:
                targets.capture(at_node[node], g, accumulate)
            if node not in needed:
                _skip_hooked_edges(node, pending, sums)
                continue
        if accumulate and node.retained_output is not None:
            node.retained_output._grad = g if outputs is not None else Tensor._wrap(g)
        if node._version_checks:
            _check_versions(node)
        if outputs is None:
            input_grads = node.backward(g)
        else:
            input_grads = _recorded_vjp(node, g, outputs.get(node))
        if input_grads.__class__ is not tuple:
            input_grads = (input_grads,)
        for parent, g_in, need in zip(node.parents, input_grads, node.needs_input_grad):
            if not need:
                continue
            parent_node = parent._ctx           # parent itself when it is a node
            if g_in is not None:
                shape = parent._out_shape if parent_node is parent else parent.data.shape
                if g_in.shape != shape:
                    _raise_wrong_shape(node, g_in, shape)
            if parent_node is None:
                if pending and parent in pending:
                    _hooked_contribution(parent, g_in, pending, sums)
                elif g_in is None:
                    continue
                elif every_leaf:
                    if parent.requires_grad:     # a gradient nothing else holds is kept as is
                        alone = getrefcount(g_in) == _ALONE     # (a statement of its own:
                        _accumulate_leaf(parent, g_in, alone)  # as an argument it counts 1 more)
                else:
                    targets.deliver_to_leaf(parent, g_in, accumulate)
            elif g_in is not None:
                # a new array/Tensor: g_in may be the very gradient another input got
                grads[parent_node] = (_sum_of_gradients(grads[parent_node], g_in)
                                      if parent_node in grads else g_in)
        if not retain_graph:
            node.release()


class _Targets:
    """Where the gradients go: every leaf (inputs=None) or just ``inputs``, which may be leaves
    or intermediate tensors (the gradient of an intermediate is what arrives at its node)."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.leaves = set()   # the leaves among inputs
        self.at_node = {}     # node -> intermediate tensor among inputs (its output)
        self.found = {}       # tensor -> gradient collected for it
        for t in inputs or ():
            if t._ctx is None:
                self.leaves.add(t)
            else:
                self.at_node[t._ctx] = t

    def needed_nodes(self, order):
        """The nodes whose backward leads to one of the inputs."""
        needed = set()
        for node in order:                   # inputs first: a node's parents are known already
            if node._freed:                  # reached, so that the walk reports it
                needed.add(node)
                continue
            for p in node.parents:
                if p is None:
                    continue
                if (p in self.leaves if p._ctx is None
                        else p._ctx in needed or p._ctx in self.at_node):
                    needed.add(node)
                    break
        return needed

    def deliver_to_leaf(self, leaf, g, accumulate):
        if self.inputs is None:
            if leaf.requires_grad:
                _accumulate_leaf(leaf, g)
        elif leaf in self.leaves:
            self.capture(leaf, g, accumulate)

    def capture(self, t, g, accumulate):
        if accumulate:                       # backward(inputs=...): into .grad, leaf or not
            _accumulate_leaf(t, g)
        else:
            self.found[t] = self.found[t] + g if t in self.found else g

    def results(self):
        return [self.found.get(t) for t in self.inputs] if self.inputs is not None else None


_EVERY_LEAF = _Targets(None)     # Tensor.backward() without inputs= (never modified)


def _references_to_a_lone_gradient():
    """getrefcount of a gradient that nothing else holds, at the line of _walk that hands a
    leaf its gradient: the same constructs (a tuple unpacked by a zip loop), measured."""
    input_grads = (np.empty(1),)
    for parent, g_in, need in zip((None,), input_grads, (True,)):
        return getrefcount(g_in)


_ALONE = _references_to_a_lone_gradient()


def _output_tensors(roots, order):
    """{node: the Tensor it produced}, for swapping a saved output array for its Tensor, where
    a parent list still holds that Tensor (else _saved_tensor wraps the array anew)."""
    out = {r._ctx: r for r in roots if r._ctx is not None}
    for node in order:
        for p in node.parents:
            if p is not None and p._ctx is not None and p._ctx is not p:   # a non-leaf Tensor
                out[p._ctx] = p
    return out


def _topological_order(root_ctxs):
    """Function nodes reachable from the roots, each after all nodes it depends on (inputs
    first), and {leaf: number of edges into it} for the leaves with post-accumulate hooks.

    Iterative depth-first search, so graphs of any depth work (no recursion limit).
    """
    order, hooked = [], {}
    visited = set()
    stack = [(ctx, False) for ctx in root_ctxs]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for parent in node.parents:
            if parent is None:
                continue
            parent_node = parent._ctx
            if parent_node is None:
                if parent._grad_hooks and parent.requires_grad:
                    hooked[parent] = hooked.get(parent, 0) + 1
            elif parent_node not in visited:
                stack.append((parent_node, False))
    return order, hooked


# ----- higher order: a node's VJP recorded as Tensor ops ------------------------------------

def _recorded_vjp(node, g, output):
    """The node's input gradients as Tensors with a graph (see the module docstring)."""
    twin = getattr(type(node), "twin", None)
    if twin is not None:
        return _vjp_through_twin(node, twin, g)
    saved = node.saved
    if saved:
        node.saved = tuple(_saved_tensor(node, a, output) for a in saved)
    try:
        input_grads = node.backward(g)
    finally:
        node.saved = saved
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    for g_in in input_grads:
        if g_in is not None and not isinstance(g_in, Tensor):
            raise RuntimeError(
                f"{node} returned a {type(g_in).__name__} where create_graph=True needs a "
                f"Tensor: {type(node).__name__}.backward is not written against xp = "
                f"array_module(g), so {type(node).__name__} cannot be differentiated twice")
    return input_grads


def _saved_tensor(node, arr, output):
    """The Tensor a saved array belongs to: the op's output or one of its inputs. Integer and
    bool arrays (indices, masks) stay arrays: nothing is differentiated through them."""
    if arr is None or isinstance(arr, Tensor) or not hasattr(arr, "dtype"):
        return arr
    if output is not None and arr is output.data:
        return output
    if id(arr) == node._out_id:
        # its output, whose Tensor no parent list holds any more (a saved array and the
        # output coexisted when forward returned, so an equal id is the same array)
        return Tensor._wrap(arr, node)
    for p in node.parents:
        if p is not None and p._ctx is not p and p.data is arr:       # a Tensor, not a node
            return p
    if arr.dtype.kind not in "fc" or any(arr is c for c in node.constants):
        return arr
    raise RuntimeError(
        f"{node} saved an intermediate float array of shape {tuple(arr.shape)} (neither an input "
        f"nor its output), so its gradient cannot be differentiated (create_graph=True): "
        f"{type(node).__name__} must save only inputs and output, or declare a twin")


def _vjp_through_twin(node, twin, g):
    """Input gradients of a fused op taken through its composite twin, recomputed on the same
    inputs: the twin's graph is made of primitive ops, each differentiable again.

    Each input position gets an alias of its own (a reshape to the same shape: a view with a
    node), and the walk from the twin's output stops at the aliases. So an input passed twice
    (attention(x, x, x)), or one another input was computed from (x from the weight W), gets
    the partial derivative of each position, as the first-order backward gives it; the outer
    walk carries the rest. (Walking to the inputs themselves counted such paths twice.)"""
    args = list(node.args)
    aliases = []
    for i, need in enumerate(node.needs_input_grad):
        if need:
            args[i] = args[i].reshape(args[i].shape)
            aliases.append(args[i])
    out = twin(*args, **node.kwargs)
    found = iter(run_backward([out], [g], retain_graph=True, create_graph=True,
                              inputs=aliases, accumulate=False))
    return tuple(next(found) if need else None for need in node.needs_input_grad)


# ----- bookkeeping --------------------------------------------------------------------------

def _raise_wrong_shape(node, g_in, shape):
    raise RuntimeError(f"internal error: {node} returned a gradient of shape {g_in.shape} "
                       f"for an input of shape {shape}")


def _raise_freed():
    raise RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the "
        "graph are freed when you call .backward() or autograd.grad(). Specify "
        "retain_graph=True if you need to backward through the graph a second time.")


def _check_versions(node):
    for counter, version, shape in node._version_checks:
        if counter[0] != version:
            raise RuntimeError(
                f"one of the tensors needed for gradient computation has been modified by an "
                f"in-place operation: a tensor of shape {tuple(shape)} saved by {node} is at "
                f"version {counter[0]}; expected version {version}. Use an out-of-place "
                f"operation, or .clone() the tensor before changing it.")


def _skip_hooked_edges(node, pending, sums):
    if pending:
        for parent in node.parents:
            if parent is not None and parent in pending:
                _hooked_contribution(parent, None, pending, sums)


def _hooked_contribution(leaf, g_in, pending, sums):
    """A leaf with hooks: add one edge's gradient to its running sum; when its last edge has
    arrived, accumulate the sum into .grad once (and run the hooks)."""
    key = leaf
    if g_in is not None:
        sums[key] = sums[key] + g_in if key in sums else g_in
    pending[key] -= 1
    if pending[key] == 0:
        total = sums.pop(key, None)
        if total is not None:
            _accumulate_leaf(leaf, total)


def _accumulate_leaf(leaf, g, alone=False):
    """Add ``g`` into ``leaf.grad``: an array (first order) or a Tensor with a graph.
    ``alone``: no variable or container but the walk's refers to the array ``g``."""
    if g.__class__ is Tensor:                    # create_graph: keep the gradient's graph
        # a copy, as PyTorch does: the same gradient Tensor may reach several leaves
        leaf._grad = g.clone() if leaf._grad is None else leaf._grad + g
    elif leaf._grad is None:
        # A leaf's .grad must never share memory with another gradient someone may change in
        # place, and backward functions may return the very array they received (add,
        # reshape). So .grad is a copy, unless the gradient is a fresh array that nothing else
        # holds or shares (as PyTorch steals such a gradient): then it is kept as it is.
        if (alone and g.dtype == leaf.data.dtype and g.flags.c_contiguous
                and memory_is_private(g)):
            grad = g
        elif g.nbytes < _POOLED_BYTES and g.__class__ is np.ndarray:
            grad = g.astype(leaf.data.dtype, order="C")
        else:
            grad = array_module(g).empty(leaf.data.shape, dtype=leaf.data.dtype)
            grad[...] = g
        leaf._grad = Tensor._wrap(grad)
    else:
        # asarray: NumPy turns the sum of two 0-d arrays into a scalar, which has no shape
        # to keep and cannot be updated in place by an optimizer
        leaf._grad.data = array_module(g).asarray(leaf._grad.data + g)
    if leaf._grad_hooks:
        for hook in tuple(leaf._grad_hooks):
            hook(leaf)


# autograd imports this module at its end, when Tensor exists
from .tensor import Tensor  # noqa: E402
