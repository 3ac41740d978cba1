"""How the transforms of func.py take their arguments and give back results.

Pytrees: an argument may be a Tensor or a tuple / list / dict of them, flattened into its
leaves and a spec to rebuild the same nesting. Differentiated arguments become fresh leaves of
the transform's own (func.py's module docstring says why ``clone`` for one that already
requires grad), and ``reaches_outside`` tells whether a result also depends on a tensor that
requires grad outside the transform, in which case its graph is kept.
"""
from .backend import get_array_module
from .ops import clone
from .tensor import Tensor


def flatten(tree):
    """(leaves, spec): the Tensors of a nested tuple/list/dict, in order, and its shape."""
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for item in tree:
            sub, spec = flatten(item)
            leaves += sub
            specs.append((len(sub), spec))
        return leaves, (type(tree), specs)
    if isinstance(tree, dict):
        leaves, spec = flatten(list(tree.values()))
        return leaves, (dict, (list(tree.keys()), spec))
    return [tree], None


def unflatten(spec, leaves):
    """The inverse of flatten: the same nesting, with ``leaves`` in place of the Tensors."""
    if spec is None:
        return leaves[0]
    kind, inner = spec
    if kind is dict:
        keys, list_spec = inner
        return dict(zip(keys, unflatten(list_spec, leaves)))
    items, start = [], 0
    for n, sub in inner:
        items.append(unflatten(sub, leaves[start:start + n]))
        start += n
    return kind(items)


def check_tensors(leaves, what):
    for k, t in enumerate(leaves):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected Tensors (or tuples/lists/dicts of Tensors), "
                            f"got {type(t).__name__} at position {k}")


def differentiable_inputs(tree, what):
    """(tree with fresh leaves, its leaves, ids of the leaves made here) for one argument."""
    leaves, spec = flatten(tree)
    check_tensors(leaves, what)
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
    return unflatten(spec, new), new, own


def reaches_outside(tensors, own):
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


def argnum_positions(argnums, n_args, what):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise IndexError(f"{what}: argnums={argnums} but the function got {n_args} "
                             f"positional arguments")
    return tuple(i % n_args for i in nums)


def split_aux(out, has_aux, what):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{what}(f, has_aux=True): f must return a pair (output, aux)")
    return out


def plain_aux(aux, own):
    """aux without the history it has through our own fresh leaves (as torch.func returns
    it); Tensors that depend on something outside keep their graph."""
    leaves, spec = flatten(aux)
    leaves = [t.detach() if isinstance(t, Tensor) and t.requires_grad
              and not reaches_outside([t], own) else t for t in leaves]
    return unflatten(spec, leaves)


def put(args, nums, values):
    args = list(args)
    for i, v in zip(nums, values):
        args[i] = v
    return args


def all_inputs(primals, what):
    """Fresh leaves for every primal: (new primals, all leaves, own ids, per-primal specs)."""
    inputs, leaves, own, specs = [], [], set(), []
    for p in primals:
        new, sub, mine = differentiable_inputs(p, what)
        inputs.append(new)
        leaves += sub
        own |= mine
        specs.append((len(sub), flatten(new)[1]))
    return inputs, leaves, own, specs


def split_by_primal(flat, specs):
    result, start = [], 0
    for n, spec in specs:
        result.append(unflatten(spec, flat[start:start + n]))
        start += n
    return result


def as_tensor_like(v, like, what):
    if not isinstance(v, Tensor):
        v = Tensor._wrap(get_array_module(like.data).asarray(v, dtype=like.dtype))
    if tuple(v.shape) != tuple(like.shape):
        raise ValueError(f"{what}: expected a tensor of shape {tuple(like.shape)}, got "
                         f"{tuple(v.shape)}")
    return v


def tangent_leaves(primals, tangents, what):
    """(primals as a tuple, the tangents' leaves), the tangents shaped like the primals."""
    primals = tuple(primals)
    tan_leaves, tan_spec = flatten(tuple(tangents))
    if tan_spec != flatten(primals)[1]:
        raise ValueError(f"{what}: tangents must have the structure of primals")
    return primals, tan_leaves
