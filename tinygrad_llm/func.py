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
from .ops import clone, permute, reshape, stack
from .tensor import Tensor


# ----- pytrees: tuples, lists and dicts of Tensors -------------------------------------------

def _flatten(tree):
    """(leaves, spec): the Tensors of a nested tuple/list/dict, in order, and its shape."""
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for item in tree:
            sub, spec = _flatten(item)
            leaves += sub
            specs.append((len(sub), spec))
        return leaves, (type(tree), specs)
    if isinstance(tree, dict):
        leaves, spec = _flatten(list(tree.values()))
        return leaves, (dict, (list(tree.keys()), spec))
    return [tree], None


def _unflatten(spec, leaves):
    """The inverse of _flatten: the same nesting, with ``leaves`` in place of the Tensors."""
    if spec is None:
        return leaves[0]
    kind, inner = spec
    if kind is dict:
        keys, list_spec = inner
        return dict(zip(keys, _unflatten(list_spec, leaves)))
    items, start = [], 0
    for n, sub in inner:
        items.append(_unflatten(sub, leaves[start:start + n]))
        start += n
    return kind(items)


def _check_tensors(leaves, what):
    for k, t in enumerate(leaves):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected Tensors (or tuples/lists/dicts of Tensors), "
                            f"got {type(t).__name__} at position {k}")


def _differentiable_inputs(tree, what):
    """(tree with fresh leaves, its leaves, ids of the leaves made here) for one argument."""
    leaves, spec = _flatten(tree)
    _check_tensors(leaves, what)
    new, own = [], set()
    for t in leaves:
        if t.dtype.kind != "f":
            raise TypeError(f"{what}: can only differentiate with respect to floating point "
                            f"tensors, got dtype {t.dtype}")
        if t.requires_grad:
            t = clone(t)   # a variable of this transform's own (see the module docstring)
        else:
            t = t.detach().requires_grad_()
            own.add(id(t))
        new.append(t)
    return _unflatten(spec, new), new, own


def _reaches_outside(tensors, own):
    """Does any tensor depend on a tensor that requires grad and is not one of our own fresh
    leaves (ids in ``own``)? Walks the graph iteratively."""
    stack_, seen = [t for t in tensors if t.requires_grad], set()
    while stack_:
        t = stack_.pop()
        if t._ctx is None:
            if id(t) not in own:
                return True
            continue
        if id(t._ctx) in seen:
            continue
        seen.add(id(t._ctx))
        stack_ += [p for p in t._ctx.parents if p is not None and p.requires_grad]
    return False


def _zeros_like(t):
    return Tensor._wrap(get_array_module(t.data).zeros(t.shape, dtype=t.dtype))


def _grads(outputs, inputs, grad_outputs, create_graph):
    """autograd.grad over the outputs that require grad; zeros for inputs they do not reach.
    The graph is kept (retain_graph=True): callers may differentiate the same outputs again."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [_zeros_like(x) for x in inputs]
    found = autograd.grad([o for o, _ in pairs], inputs, grad_outputs=[g for _, g in pairs],
                          retain_graph=True, create_graph=create_graph, allow_unused=True)
    return [_zeros_like(x) if g is None else g for g, x in zip(found, inputs)]


def _plain(tree_leaves, keep_graph):
    return tree_leaves if keep_graph else [t.detach() for t in tree_leaves]


def _argnums(argnums, n_args, what):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise IndexError(f"{what}: argnums={argnums} but the function got {n_args} "
                             f"positional arguments")
    return tuple(i % n_args for i in nums)


def _split_aux(out, has_aux, what):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{what}(f, has_aux=True): f must return a pair (output, aux)")
    return out


def _plain_aux(aux, own):
    """aux without the history it has through our own fresh leaves (as torch.func returns
    it); Tensors that depend on something outside keep their graph."""
    leaves, spec = _flatten(aux)
    leaves = [t.detach() if isinstance(t, Tensor) and t.requires_grad
              and not _reaches_outside([t], own) else t for t in leaves]
    return _unflatten(spec, leaves)


def _put(args, nums, values):
    args = list(args)
    for i, v in zip(nums, values):
        args[i] = v
    return args


def _all_inputs(primals, what):
    """Fresh leaves for every primal: (new primals, all leaves, own ids, per-primal specs)."""
    inputs, leaves, own, specs = [], [], set(), []
    for p in primals:
        new, sub, mine = _differentiable_inputs(p, what)
        inputs.append(new)
        leaves += sub
        own |= mine
        specs.append((len(sub), _flatten(new)[1]))
    return inputs, leaves, own, specs


def _split_by_primal(flat, specs):
    result, start = [], 0
    for n, spec in specs:
        result.append(_unflatten(spec, flat[start:start + n]))
        start += n
    return result


def _as_tensor_like(v, like, what):
    if not isinstance(v, Tensor):
        v = Tensor._wrap(get_array_module(like.data).asarray(v, dtype=like.dtype))
    if tuple(v.shape) != tuple(like.shape):
        raise ValueError(f"{what}: expected a tensor of shape {tuple(like.shape)}, got "
                         f"{tuple(v.shape)}")
    return v


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
        nums = _argnums(argnums, len(args), "grad")
        with enable_grad():
            inputs, leaves, own, specs = _all_inputs([args[i] for i in nums], "grad")
            value, aux = _split_aux(f(*_put(args, nums, inputs)), has_aux, "grad")
            seed = _scalar_seed(value, "grad")
            keep = _reaches_outside([value], own)
            flat = _grads([value], leaves, [seed], create_graph=keep)
        per_arg = _split_by_primal(flat, specs)
        result = per_arg[0] if isinstance(argnums, int) else tuple(per_arg)
        value = _plain([value], keep)[0]
        return (result, (value, _plain_aux(aux, own))) if has_aux else (result, value)
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
        inputs, leaves, own, specs = _all_inputs(primals, "vjp")
        out, aux = _split_aux(f(*inputs), has_aux, "vjp")
    out_leaves, out_spec = _flatten(out)
    _check_tensors(out_leaves, "vjp: the output of f")
    outside = _reaches_outside(out_leaves, own)

    def vjp_fn(cotangents):
        cots, spec = _flatten(cotangents)
        if spec != out_spec:
            raise ValueError("vjp_fn: the cotangents must have the structure of f's output")
        cots = [_as_tensor_like(c, o, "vjp_fn") for c, o in zip(cots, out_leaves)]
        keep = outside or any(c.requires_grad for c in cots)
        with enable_grad():
            flat = _plain(_grads(out_leaves, leaves, cots, create_graph=keep), keep)
        return tuple(_split_by_primal(flat, specs))

    out = _unflatten(out_spec, _plain(out_leaves, outside))
    return (out, vjp_fn, _plain_aux(aux, own)) if has_aux else (out, vjp_fn)


# ----- jvp and hvp: two backward passes --------------------------------------------------------

def _transposed(out_leaves, leaves):
    """Dummy cotangents u = 0 (leaves) and g(u) = J^T u with its graph recorded."""
    us = [_zeros_like(o).requires_grad_() for o in out_leaves]
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
    primals, tangents = tuple(primals), tuple(tangents)
    tan_leaves, tan_spec = _flatten(tangents)
    if tan_spec != _flatten(primals)[1]:
        raise ValueError("jvp: tangents must have the structure of primals")
    with enable_grad():
        inputs, leaves, own, _ = _all_inputs(primals, "jvp")
        out_leaves, out_spec = _flatten(f(*inputs))
        _check_tensors(out_leaves, "jvp: the output of f")
        tan_leaves = [_as_tensor_like(v, x, "jvp") for v, x in zip(tan_leaves, leaves)]
        keep = _reaches_outside(out_leaves, own) or any(v.requires_grad for v in tan_leaves)
        us, gs = _transposed(out_leaves, leaves)
        jv = _plain(_jacobian_times(us, gs, tan_leaves, keep), keep)
    return _unflatten(out_spec, _plain(out_leaves, keep)), _unflatten(out_spec, jv)


def hvp(f, primals, tangents):
    """``(f(*primals), H v)`` for a function returning a one-element Tensor.

    H v = d<grad f(x), v>/dx (reverse over reverse: one backward pass with create_graph=True
    gives grad f, a second one its vector-Jacobian product with v). That product is H^T v,
    which equals H v because the Hessian of a twice continuously differentiable f is
    symmetric. H v has the structure of primals.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    tan_leaves, tan_spec = _flatten(tangents)
    if tan_spec != _flatten(primals)[1]:
        raise ValueError("hvp: tangents must have the structure of primals")
    with enable_grad():
        inputs, leaves, own, specs = _all_inputs(primals, "hvp")
        value = f(*inputs)
        seed = _scalar_seed(value, "hvp")
        tan_leaves = [_as_tensor_like(v, x, "hvp") for v, x in zip(tan_leaves, leaves)]
        keep = _reaches_outside([value], own) or any(v.requires_grad for v in tan_leaves)
        g = _grads([value], leaves, [seed], create_graph=True)
        hv = _plain(_grads(g, leaves, tan_leaves, create_graph=keep), keep)
    return _plain([value], keep)[0], tuple(_split_by_primal(hv, specs))


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
        nums = _argnums(argnums, len(args), what)
        with enable_grad():
            inputs, leaves, own, specs = _all_inputs([args[i] for i in nums], what)
            out, aux = _split_aux(f(*_put(args, nums, inputs)), has_aux, what)
            out_leaves, out_spec = _flatten(out)
            _check_tensors(out_leaves, f"{what}: the output of f")
            keep = _reaches_outside(out_leaves, own)
            if forward:
                blocks = _jacobian_by_columns(out_leaves, leaves, keep)
            else:
                blocks = [_jacobian_by_rows(o, leaves, keep) for o in out_leaves]
        per_output = []
        for row in blocks:
            per_arg = _split_by_primal(_plain(row, keep), specs)
            per_output.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        jac = _unflatten(out_spec, per_output)
        return (jac, _plain_aux(aux, own)) if has_aux else jac
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
            tangents = [_one_hot(x, k) if i == j else _zeros_like(t) for i, t in enumerate(leaves)]
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
