"""Indexing ops: x[index], gather, cat, stack, split.

Their backward passes scatter the gradient back to where the values came from. With advanced
(integer-array) indexing an element can be used several times, so the scatter must *add*:
``np.add.at`` does, while ``g[idx] += up`` would count a repeated index only once.

That scatter is ``scatter_back``: on arrays a plain function; when the backward pass is
recorded (create_graph=True) the ScatterBack Function, whose own backward is the gather again
(scatter and gather are each other's transpose), so second derivatives flow through it.
"""
import operator

from ..autograd import Function, records_graph
from ..backend import get_array_module, scatter_add
from ..kernels import embedding as embedding_kernel
from ..kernels.fastnp import array_module
from .reduce import normalize_dims


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") and getattr(i, "ndim", 0) > 0 or isinstance(i, list)
               for i in items)


def _unwrap_index(index, xp):
    """Tensor -> array inside an index (a tuple's elements too); lists become arrays."""
    from ..tensor import Tensor

    def one(i):
        if isinstance(i, Tensor):
            i = i.data
        if isinstance(i, list):
            i = xp.asarray(i)
        if hasattr(i, "dtype") and getattr(i, "ndim", 0) > 0 and i.dtype.kind == "f":
            raise IndexError(f"tensors used as indices must be long, int or bool, got {i.dtype}")
        return i

    if isinstance(index, tuple):
        return tuple(one(i) for i in index)
    return one(index)


def _integers_first(index):
    """PyTorch's order for an index mixing integers with index arrays: the integers select
    first (a basic index), then the arrays apply to what is left. NumPy counts an integer as
    one more advanced index, so ``x[0, :, [0, 1]]`` on a (2, 5, 6) array gives (2, 5) there
    but (5, 2) in PyTorch. Returns (basic, rest), or None when NumPy's order is the same."""
    items = index if isinstance(index, tuple) else (index,)
    is_int = [isinstance(i, int) and not isinstance(i, bool) for i in items]
    if not any(is_int) or not any(hasattr(i, "ndim") and i.ndim > 0 for i in items):
        return None
    basic, rest = [], []
    for i, integer in zip(items, is_int):
        if integer:
            basic.append(i)                                 # consumed by the first step
        elif i is None:
            basic.append(None)                              # the new axis appears there...
            rest.append(slice(None))                        # ...and is kept by the second
        elif i is Ellipsis:
            basic.append(Ellipsis)
            rest.append(Ellipsis)
        else:
            width = i.ndim if getattr(i, "dtype", None) is not None and i.dtype == bool else 1
            basic.extend([slice(None)] * width)
            rest.append(i)
    return tuple(basic), tuple(rest)


def _take(x, index, split):
    """x[index]; ``split`` (from ``_integers_first``) applies PyTorch's order when integers
    are mixed with index arrays."""
    if split is not None:
        basic, rest = split
        return x[basic][rest]
    return x[index]


class GetItem(Function):
    """y = x[index];   dx = zeros like x, then dx[index] += dy (accumulating repeated indices).

    Integers mixed with index arrays select first, as in PyTorch (``_integers_first``).
    """

    def forward(self, x, index, advanced):
        self.in_shape, self.index, self.advanced = x.shape, index, advanced
        self.split = _integers_first(index) if advanced else None
        return _take(x, index, self.split)

    def backward(self, g):
        return scatter_back(g, self.in_shape, self.index, self.advanced, self.split)


class ScatterBack(Function):
    """y = zeros(shape), then y[index] += g: the transpose of y = x[index] (GetItem).

    It is linear in g, and its own backward is the gather again: dg = dy[index]. Every
    gather-like op (getitem, gather, index_select, take along an axis, pads, embedding) sends
    its gradient back through it, so the backward pass stays differentiable (create_graph).
    """

    def forward(self, g, shape, index, advanced=True, split=None):
        self.index, self.advanced, self.split = index, advanced, split
        return _scatter_into_zeros(g, shape, index, advanced, split)

    def backward(self, gg):
        if records_graph(gg):
            return GetItem.apply(gg, self.index, self.advanced)
        return _take(gg, self.index, self.split)


def scatter_back(g, shape, index, advanced=True, split=None):
    """zeros(shape) with g added at ``index`` (repeated positions add up): the gradient of
    x[index]. Recorded as a ScatterBack node when g is a Tensor (create_graph=True)."""
    if records_graph(g):
        return ScatterBack.apply(g, shape, index, advanced, split)
    return _scatter_into_zeros(g, shape, index, advanced, split)


def _scatter_into_zeros(g, shape, index, advanced, split):
    xp = array_module(g)
    dx = xp.empty(shape, dtype=g.dtype)     # a large one is reused memory: no page faults
    dx.fill(0)
    if split is not None:
        basic, rest = split
        scatter_add(dx[basic], rest, g)                 # dx[basic] is a view of dx
    elif advanced:
        scatter_add(dx, index, g)
    else:  # basic indexing (ints and slices) never repeats an element
        dx[index] = g
    return dx


def along(axis, source):
    """The index that reads take(x, source, axis=axis): every position before ``axis``, then
    the integer array ``source`` (of any shape)."""
    return (slice(None),) * axis + (source,)


def getitem(x, index):
    index = _unwrap_index(index, get_array_module(x.data))
    advanced = _is_advanced(index)
    out = GetItem.apply(x, index, advanced)
    if not advanced:  # basic indexing returns a view of x
        out._version = x._version
    return out


def narrow(x, dim, start, length):
    (axis,) = normalize_dims(dim, x.ndim, "narrow")
    index = (slice(None),) * axis + (slice(start, start + length),)
    return getitem(x, index)


class Gather(Function):
    """y[i][j][k] = x[i][index[i][j][k]][k]  (for dim = 1; likewise for other dims)

    dx = zeros like x, then dx[i][index[i][j][k]][k] += dy[i][j][k]  (repeated indices add).
    """

    def forward(self, x, dim, index):
        xp = get_array_module(x)
        self.in_shape, self.dim = x.shape, dim
        self.index = index
        return xp.take_along_axis(x, index, axis=dim)

    def backward(self, g):
        return scatter_back(g, self.in_shape, _along_axis(self.index, self.dim))


class Embedding(Function):
    """y[...] = W[ids[...]]   (a row lookup);   dW[i] = sum of dy over positions with ids == i.

    Rows equal to padding_idx get no gradient. The ids are checked by the caller. Kernel:
    kernels/embedding.py (the scatter-add of the backward, split by column blocks).
    """

    def forward(self, weight, ids, padding_idx=None):
        self.ids, self.padding_idx, self.w_shape = ids, padding_idx, weight.shape
        xp = array_module(weight)
        out = xp.empty(ids.shape + weight.shape[1:], weight.dtype)   # (..., C), reused memory
        return xp.take(weight, ids, axis=0, out=out)                  # weight[ids]

    def backward(self, g):
        if records_graph(g):              # the same sum, as a differentiable scatter
            dw = scatter_back(g, self.w_shape, (self.ids,))
            if self.padding_idx is not None:
                rows = get_array_module(self.ids).arange(self.w_shape[0])
                dw = get_array_module(g).where((rows == self.padding_idx)[:, None], 0, dw)
            return dw, None, None
        ids = self.ids.reshape(-1)                                    # (N,)
        g2 = array_module(g).ascontiguousarray(g).reshape(-1, g.shape[-1])   # (N, C)
        dw = embedding_kernel.embedding_backward(ids, g2, self.w_shape[0],
                                                 padding_idx=self.padding_idx)
        return dw, None, None


def embedding(weight, ids, padding_idx=None):
    return Embedding.apply(weight, ids, padding_idx)


def _along_axis(index, dim):
    """The full advanced index (one array per axis) that take_along_axis(x, index, dim) reads."""
    xp = get_array_module(index)
    grids = list(xp.ix_(*[xp.arange(n) for n in index.shape]))
    grids[dim] = index
    return tuple(grids)


def gather(x, dim, index):
    """PyTorch's gather: index has x's number of dims; 0 <= index < x.shape[dim] is checked."""
    from ..tensor import Tensor
    idx = index.data if isinstance(index, Tensor) else index
    xp = get_array_module(x.data)
    idx = xp.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index of shape {tuple(idx.shape)} must have as many dims as "
                         f"the input of shape {tuple(x.shape)}")
    (axis,) = normalize_dims(dim, x.ndim, "gather")
    for d in range(x.ndim):
        if d != axis and idx.shape[d] > x.shape[d]:
            raise ValueError(f"gather: index shape {tuple(idx.shape)} is larger than input shape "
                             f"{tuple(x.shape)} in dimension {d}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= x.shape[axis]):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"gather: index {bad} is out of bounds for dimension {axis} with size "
                         f"{x.shape[axis]}")
    if any(idx.shape[d] < x.shape[d] for d in range(x.ndim) if d != axis):
        x = getitem(x, tuple(slice(0, n) if d != axis else slice(None)
                             for d, n in enumerate(idx.shape)))
    return Gather.apply(x, axis, idx)


class Cat(Function):
    """y = [x_1, x_2, ...] joined along ``dim``;   dx_k = the slice of dy that x_k filled."""

    def forward(self, *xs, dim):
        xp = get_array_module(*xs)
        self.dim = dim
        self.sizes = [x.shape[dim] for x in xs]
        try:
            return xp.concatenate(xs, axis=dim)
        except ValueError:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"cat: tensors must have the same shape except in dimension "
                             f"{dim}, got {shapes}") from None

    def backward(self, g):
        grads, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.dim + (slice(start, start + size),)
            grads.append(g[index])
            start += size
        return tuple(grads)


def _dim(dim, op):
    """An int dim; a 0-d integer tensor is accepted too, anything else is a TypeError."""
    try:
        return operator.index(dim)
    except TypeError:
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    for k, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"cat: zero-dimensional tensor (at position {k}) cannot be "
                               f"concatenated; use stack to join scalars")
    (axis,) = normalize_dims(_dim(dim, "cat"), tensors[0].ndim, "cat")
    return Cat.apply(*tensors, dim=axis)


def stack(tensors, dim=0):
    """Join tensors of equal shape along a new axis ``dim``."""
    from .shape import unsqueeze
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: expects each tensor to be equal size, got {sorted(shapes)}")
    dim = _dim(dim, "stack")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def split(x, split_size_or_sections, dim=0):
    """PyTorch's split: an int gives chunks of that size (the last may be smaller); a list
    gives the chunk sizes, which must add up to x.shape[dim]."""
    (axis,) = normalize_dims(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dimension "
                             f"{axis} has size {n}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(narrow(x, axis, start, size))
        start += size
    return tuple(pieces)


def chunk(x, chunks, dim=0):
    (axis,) = normalize_dims(dim, x.ndim, "chunk")
    n = x.shape[axis]
    size = -(-n // chunks)  # ceil division, as in PyTorch
    return split(x, max(size, 1), axis)
