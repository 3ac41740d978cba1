"""Function transforms, named as in ``torch.func``: grad, grad_and_value, vjp, jvp, hvp, jacrev
(alias jacobian), jacfwd and hessian.

Each transform takes a function of Tensors and returns a function (or, for vjp/jvp/hvp, the
values) built from reverse-mode autodiff, ``autograd.grad``:

    grad(f)(x)                df/dx                     one backward pass
    vjp(f, x)[1](u)           J^T u                     one backward pass per call
    jvp(f, (x,), (v,))[1]     J v                       two backward passes (see jvp)
    hvp(f, (x,), (v,))[1]     H v = d<grad f(x), v>/dx  reverse over reverse
    jacrev(f)(x)              J, one row per output element
    jacfwd(f)(x)              J, one column per input element (through jvp)
    hessian(f)(x)             H = jacrev(jacrev(f))(x)

Inputs and outputs are Tensors, or tuples / lists / dicts of Tensors (pytrees).

How a transform differentiates: each differentiated argument that does not require grad is
replaced by a fresh leaf (``x.detach().requires_grad_()``) and f is called on it. An argument
that already requires grad (a parameter, or the input of an enclosing transform, as in
``jacrev(grad(f))``) is replaced by ``clone(x)``: a new node of the graph, so that the result
stays connected to x, yet the derivative is taken with respect to this transform's own variable
only. Differentiating with respect to x itself would mix up the levels when f also uses x
directly ("perturbation confusion": d/dx [x * d/dy (x + y) at y = x] is 1, not 2; autograd.grad
accepts such an intermediate tensor as an input). The backward pass records a graph
(``create_graph=True``) only when the output also depends on a tensor that requires grad
outside this transform (an enclosing transform, model parameters closed over by f, a gradient
penalty): then the result can be differentiated again. Otherwise the result is a plain Tensor
without history, as in torch.func.

No vmap: this library runs one Python op per array operation, with no batching rule per op,
so a vmap could only loop over the batch in Python: it would give the right numbers under a
name that promises a vectorized program, which it is not. Loop, or batch by hand.
"""
from . import autograd
from .autograd import enable_grad
from .backend import get_array_module
from .creation import zeros_like
from .func_args import (all_inputs, argnum_positions, as_tensor_like, check_tensors, flatten,
                        plain_aux, put, reaches_outside, split_aux, split_by_primal,
                        tangent_leaves, unflatten)
from .ops import permute, reshape, stack
from .tensor import Tensor


def _grads(outputs, inputs, grad_outputs, create_graph):
    """autograd.grad over the outputs that require grad; zeros for inputs they do not reach.
    The graph is kept (retain_graph=True): callers may differentiate the same outputs again."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [zeros_like(x) for x in inputs]
    found = autograd.grad([o for o, _ in pairs], inputs, grad_outputs=[g for _, g in pairs],
                          retain_graph=True, create_graph=create_graph, allow_unused=True)
    return [zeros_like(x) if g is None else g for g, x in zip(found, inputs)]


def _plain(tree_leaves, keep_graph):
    return tree_leaves if keep_graph else [t.detach() for t in tree_leaves]


def _scalar_seed(value, what):
    """The seed 1 for a one-element output (an error for any other output)."""
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise RuntimeError(f"{what}: f must return a one-element Tensor, got "
                           f"{getattr(value, 'shape', type(value).__name__)}")
    return Tensor._wrap(get_array_module(value.data).ones(value.shape, value.dtype))


# ----- grad and vjp: one backward pass ---------------------------------------------------------

def grad_and_value(f, argnums=0, has_aux=False):
    """``(df/dx, f(x))`` for a function f returning a one-element Tensor.

    df/dx_i = d f / d x_i, found by one backward pass seeded with 1. ``argnums`` (an int or a
    tuple of ints) picks the arguments: an int gives one gradient, a tuple a tuple of them.
    With ``has_aux=True`` f returns ``(value, aux)`` and the result is ``(grad, (value, aux))``.
    """
    def wrapper(*args):
        nums = argnum_positions(argnums, len(args), "grad")
        with enable_grad():
            inputs, leaves, own, specs = all_inputs([args[i] for i in nums], "grad")
            value, aux = split_aux(f(*put(args, nums, inputs)), has_aux, "grad")
            seed = _scalar_seed(value, "grad")
            keep = reaches_outside([value], own)
            flat = _grads([value], leaves, [seed], create_graph=keep)
        per_arg = split_by_primal(flat, specs)
        result = per_arg[0] if isinstance(argnums, int) else tuple(per_arg)
        value = _plain([value], keep)[0]
        return (result, (value, plain_aux(aux, own))) if has_aux else (result, value)
    return wrapper


def grad(f, argnums=0, has_aux=False):
    """``df/dx``: the gradient of a function returning a one-element Tensor (see
    grad_and_value). For example grad(lambda x: (x ** 3).sum())(x) == 3 x^2."""
    g_and_v = grad_and_value(f, argnums, has_aux)

    def wrapper(*args):
        g, value = g_and_v(*args)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(f, *primals, has_aux=False):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(u)`` is the vector-Jacobian product J^T u.

    (J^T u)_j = sum_i u_i d f_i / d x_j for every primal x_j: one backward pass seeded with
    u, which has the structure of f's output. vjp_fn returns a tuple, one entry per primal, and
    may be called several times. With ``has_aux=True`` the result is (out, vjp_fn, aux).
    """
    with enable_grad():
        inputs, leaves, own, specs = all_inputs(primals, "vjp")
        out, aux = split_aux(f(*inputs), has_aux, "vjp")
    out_leaves, out_spec = flatten(out)
    check_tensors(out_leaves, "vjp: the output of f")
    outside = reaches_outside(out_leaves, own)

    def vjp_fn(cotangents):
        cots, spec = flatten(cotangents)
        if spec != out_spec:
            raise ValueError("vjp_fn: the cotangents must have the structure of f's output")
        cots = [as_tensor_like(c, o, "vjp_fn") for c, o in zip(cots, out_leaves)]
        keep = outside or any(c.requires_grad for c in cots)
        with enable_grad():
            flat = _plain(_grads(out_leaves, leaves, cots, create_graph=keep), keep)
        return tuple(split_by_primal(flat, specs))

    out = unflatten(out_spec, _plain(out_leaves, outside))
    return (out, vjp_fn, plain_aux(aux, own)) if has_aux else (out, vjp_fn)


# ----- jvp and hvp: two backward passes --------------------------------------------------------

def _transposed(out_leaves, leaves):
    """Dummy cotangents u = 0 (leaves) and g(u) = J^T u with its graph recorded."""
    us = [zeros_like(o).requires_grad_() for o in out_leaves]
    return us, _grads(out_leaves, leaves, us, create_graph=True)


def _jacobian_times(us, gs, tangents, keep):
    """J v = d<J^T u, v>/du: differentiate g(u) = J^T u (linear in u) along v."""
    return _grads(gs, us, tangents, create_graph=keep)


def jvp(f, primals, tangents):
    """``(f(*primals), J v)``: the Jacobian-vector product (forward-mode derivative).

    (J v)_i = sum_j d f_i / d x_j v_j. Computed by the double-vjp trick rather than dual
    numbers: g(u) = J^T u is linear in u, so its vector-Jacobian product with v is
    d<J^T u, v>/du = J v. One backward pass builds g(u) with create_graph=True at u = 0, a
    second differentiates it with respect to u. ``primals`` and ``tangents`` are tuples of the
    same structure; J v has the structure of f's output.
    """
    primals, tan_leaves = tangent_leaves(primals, tangents, "jvp")
    with enable_grad():
        inputs, leaves, own, _ = all_inputs(primals, "jvp")
        out_leaves, out_spec = flatten(f(*inputs))
        check_tensors(out_leaves, "jvp: the output of f")
        tan_leaves = [as_tensor_like(v, x, "jvp") for v, x in zip(tan_leaves, leaves)]
        keep = reaches_outside(out_leaves, own) or any(v.requires_grad for v in tan_leaves)
        us, gs = _transposed(out_leaves, leaves)
        jv = _plain(_jacobian_times(us, gs, tan_leaves, keep), keep)
    return unflatten(out_spec, _plain(out_leaves, keep)), unflatten(out_spec, jv)


def hvp(f, primals, tangents):
    """``(f(*primals), H v)`` for a function returning a one-element Tensor.

    H v = d<grad f(x), v>/dx (reverse over reverse: one backward pass with create_graph=True
    gives grad f, a second one its vector-Jacobian product with v). That product is H^T v,
    which equals H v because the Hessian of a twice continuously differentiable f is
    symmetric. H v has the structure of primals.
    """
    primals, tan_leaves = tangent_leaves(primals, tangents, "hvp")
    with enable_grad():
        inputs, leaves, own, specs = all_inputs(primals, "hvp")
        value = f(*inputs)
        seed = _scalar_seed(value, "hvp")
        tan_leaves = [as_tensor_like(v, x, "hvp") for v, x in zip(tan_leaves, leaves)]
        keep = reaches_outside([value], own) or any(v.requires_grad for v in tan_leaves)
        g = _grads([value], leaves, [seed], create_graph=True)
        hv = _plain(_grads(g, leaves, tan_leaves, create_graph=keep), keep)
    return _plain([value], keep)[0], tuple(split_by_primal(hv, specs))


# ----- Jacobians and Hessians ------------------------------------------------------------------

def _one_hot(like, k):
    xp = get_array_module(like.data)
    e = xp.zeros(like.numel(), dtype=like.dtype)
    e[k] = 1
    return Tensor._wrap(e.reshape(like.shape))


def _jacobian_transform(f, argnums, has_aux, forward):
    """The shared body of jacrev and jacfwd: J[out][arg] of shape out.shape + arg.shape."""
    what = "jacfwd" if forward else "jacrev"

    def wrapper(*args):
        nums = argnum_positions(argnums, len(args), what)
        with enable_grad():
            inputs, leaves, own, specs = all_inputs([args[i] for i in nums], what)
            out, aux = split_aux(f(*put(args, nums, inputs)), has_aux, what)
            out_leaves, out_spec = flatten(out)
            check_tensors(out_leaves, f"{what}: the output of f")
            keep = reaches_outside(out_leaves, own)
            if forward:
                blocks = _jacobian_by_columns(out_leaves, leaves, keep)
            else:
                blocks = [_jacobian_by_rows(o, leaves, keep) for o in out_leaves]
        per_output = []
        for row in blocks:
            per_arg = split_by_primal(_plain(row, keep), specs)
            per_output.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        jac = unflatten(out_spec, per_output)
        return (jac, plain_aux(aux, own)) if has_aux else jac
    return wrapper


def _jacobian_by_rows(o, leaves, keep):
    """Row k of J is the vector-Jacobian product with the one-hot cotangent e_k."""
    rows = [_grads([o], leaves, [_one_hot(o, k)], create_graph=keep) for k in range(o.numel())]
    return [reshape(stack([r[j] for r in rows]), *(o.shape + x.shape))  # out.shape + x.shape
            for j, x in enumerate(leaves)]


def _jacobian_by_columns(out_leaves, leaves, keep):
    """Column k of J is the Jacobian-vector product with the one-hot tangent e_k (jvp)."""
    us, gs = _transposed(out_leaves, leaves)
    blocks = [[] for _ in out_leaves]
    for j, x in enumerate(leaves):
        cols = []
        for k in range(x.numel()):
            tangents = [_one_hot(x, k) if i == j else zeros_like(t) for i, t in enumerate(leaves)]
            cols.append(_jacobian_times(us, gs, tangents, keep))
        for i, o in enumerate(out_leaves):
            block = reshape(stack([c[i] for c in cols]), *(x.shape + o.shape))
            order = [x.ndim + a for a in range(o.ndim)] + list(range(x.ndim))
            blocks[i].append(permute(block, *order))               # out.shape + x.shape
    return blocks


def jacrev(f, argnums=0, has_aux=False):
    """The Jacobian J[i, j] = d f_i / d x_j by reverse mode: one backward pass per output
    element (row i is the vector-Jacobian product with the one-hot e_i).

    The result for an output of shape S and an argument of shape A has shape S + A; for a tuple
    output (or tuple argnums) it is a tuple of such Jacobians, outputs outermost, as in
    torch.func.jacrev."""
    return _jacobian_transform(f, argnums, has_aux, forward=False)


jacobian = jacrev


def jacfwd(f, argnums=0, has_aux=False):
    """The Jacobian J[i, j] = d f_i / d x_j column by column: column j is the Jacobian-vector
    product J e_j (see jvp). Same result and layout as jacrev. Here jvp is itself two reverse
    passes (the double-vjp trick), so jacfwd is not faster than jacrev for wide inputs as true
    forward mode would be; it exists for parity with torch.func and as a cross-check."""
    return _jacobian_transform(f, argnums, has_aux, forward=True)


def hessian(f, argnums=0):
    """The Hessian H[i, j] = d^2 f / dx_i dx_j of a function returning a one-element Tensor,
    as jacrev(jacrev(f)): shape x.shape + x.shape (a one-element output's shape in front,
    if it has one). torch.func.hessian computes jacfwd(jacrev(f)): the same numbers."""
    return jacrev(jacrev(f, argnums), argnums)
