"""Shape ops: reshape, permute/transpose, expand, squeeze/unsqueeze, indexing, cat/stack/split,
gather.

These ops move values without changing them, so each backward moves the gradient back the
opposite way: reshape back, permute by the inverse permutation, sum over expanded axes, and
scatter-add into the indexed positions (duplicated indices add up: x[[0, 0]] uses x[0] twice).

Views (reshape, permute, expand, squeeze, unsqueeze, basic indexing) share the input's version
counter, so an in-place change through a view is seen by the in-place check of autograd.
"""
import functools

from ..autograd import Function
from ..backend import get_array_module
from ..kernels import fastnp
from .elementwise import unbroadcast
from .reduce import normalize_dims


def _share_version(out, x):
    out._version = x._version
    return out


def _shape_arg(shape):
    """Accept reshape(2, 3) and reshape((2, 3)) as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    """y = x with a new shape (same elements in the same order);   dy/dx: reshape back."""

    def forward(self, x, shape):
        self.in_shape = x.shape
        try:
            return fastnp.reshape(x, shape)     # x.reshape(shape): a view, or a copy if needed
        except ValueError:
            raise ValueError(f"reshape: shape {tuple(shape)} is invalid for an input of shape "
                             f"{x.shape} ({x.size} elements)") from None

    def backward(self, g):
        return fastnp.reshape(g, self.in_shape)


def reshape(x, *shape):
    return _share_version(Reshape.apply(x, _shape_arg(shape)), x)


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    (start,) = normalize_dims(start_dim, x.ndim, "flatten")
    (end,) = normalize_dims(end_dim, x.ndim, "flatten")
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return reshape(x, *shape)


def squeeze(x, dim=None):
    """Remove axes of size 1 (all of them, or only ``dim`` if it has size 1)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dims(dim, x.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1))
    return reshape(x, *shape)


def unsqueeze(x, dim):
    """Insert an axis of size 1 at position ``dim`` (negative counts from the new end)."""
    new_ndim = x.ndim + 1
    if not -new_ndim <= dim < new_ndim:
        raise IndexError(f"unsqueeze: dimension out of range (expected to be in range of "
                         f"[{-new_ndim}, {new_ndim - 1}], but got {dim})")
    dim = dim % new_ndim
    return reshape(x, *(x.shape[:dim] + (1,) + x.shape[dim:]))


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[perm[i]];   dy/dx: inverse permute."""

    def forward(self, x, perm):
        self.perm = perm
        return x.transpose(perm)

    def backward(self, g):
        return get_array_module(g).transpose(g, _inverse(self.perm))


@functools.lru_cache(maxsize=256)
def _inverse(perm):
    """The permutation that undoes ``perm``: inverse[perm[i]] = i."""
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


def permute(x, *dims):
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor of shape "
                         f"{tuple(x.shape)}")
    normalize_dims(dims, x.ndim, "permute")  # raises for out-of-range or repeated dims
    perm = tuple(d % x.ndim for d in dims)
    return _share_version(Permute.apply(x, perm), x)


def transpose(x, dim0, dim1):
    """Swap two axes."""
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    (d0,) = normalize_dims(dim0, x.ndim, "transpose")
    (d1,) = normalize_dims(dim1, x.ndim, "transpose")
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _share_version(Permute.apply(x, tuple(perm)), x)


class Expand(Function):
    """y = x broadcast to a larger shape (a read-only view);   dy/dx: sum over expanded axes."""

    def forward(self, x, shape):
        self.in_shape = x.shape
        try:
            return get_array_module(x).broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: the shape {x.shape} cannot be expanded to "
                             f"{tuple(shape)}") from None

    def backward(self, g):
        return unbroadcast(g, self.in_shape)


def expand(x, *shape):
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: the target shape {shape} has fewer dims than the input "
                         f"shape {tuple(x.shape)}")
    full = tuple(x.shape[i - lead] if (n == -1 and i >= lead) else n
                 for i, n in enumerate(shape))
    return _share_version(Expand.apply(x, full), x)
