"""Scatter and selection: scatter, scatter_add, scatter_reduce, index_select, masked_select,
nonzero, one_hot.

scatter writes src into x at positions named by ``index`` along ``dim``; for dim = 1:

    out[i][index[i][j][k]][k]  (op)=  src[i][j][k]

so it is the adjoint of gather: every backward below gathers the upstream gradient back
from the written positions (``g[target]``), and each input's gradient is what its value
contributed to the output. Several src values sent to one position (duplicates in index)
combine by the reduction; plain ``scatter`` keeps one of them (which one is unspecified, as in
PyTorch).
"""
import numpy as np

from ..autograd import Function, records_graph

from ..backend import get_array_module, is_cupy_array, scatter_add as _scatter_add_into
from ..backend import to_numpy
from .indexing import along, scatter_back
from .reduce import normalize_dims

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _target(index, axis, xp):
    """The full advanced index that scatter writes to: index along ``axis``, the position of
    each index element along every other axis."""
    grids = list(xp.ix_(*[xp.arange(n) for n in index.shape]))
    grids[axis] = index
    return tuple(grids)


def _head(src, shape):
    """The leading block of src of the index's shape (the part of src that is used)."""
    return src[tuple(slice(0, n) for n in shape)]


def _at(name, xp, target, where, values):
    """Unbuffered in-place ``target[where] (op)= values`` for the ufunc ``name``."""
    if name == "add":
        _scatter_add_into(target, where, values)
    elif is_cupy_array(target):
        # CuPy lacks multiply.at (and maximum.at on older versions): reduce on the host
        # (slower, same numbers), then copy the result back into the device array
        host = to_numpy(target)
        getattr(np, name).at(host, tuple(to_numpy(w) for w in where), to_numpy(values))
        target[...] = xp.asarray(host)
    else:
        getattr(np, name).at(target, where, values)


def _check(op, x, axis, index, src_shape=None):
    xp = get_array_module(index)
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {index.dtype}")
    if index.ndim != x.ndim:
        raise RuntimeError(f"{op}(): Index tensor must have the same number of dimensions as "
                           f"self tensor ({index.ndim} vs {x.ndim})")
    for d in range(x.ndim):
        if d != axis and index.shape[d] > x.shape[d]:
            raise RuntimeError(f"{op}(): Expected index {tuple(index.shape)} to be smaller than "
                               f"self {tuple(x.shape)} apart from dimension {axis}")
        if src_shape is not None and index.shape[d] > src_shape[d]:
            raise RuntimeError(f"{op}(): Expected index {tuple(index.shape)} to be smaller than "
                               f"src {tuple(src_shape)} in every dimension")
    if index.size:
        lo, hi = int(xp.min(index)), int(xp.max(index))
        if lo < 0 or hi >= x.shape[axis]:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{op}(): index {bad} is out of bounds for dimension {axis} with "
                             f"size {x.shape[axis]}")


# ----- scatter ------------------------------------------------------------------------------

class Scatter(Function):
    """out = x, then out[target] = src   (target: see ``_target``)

    dx = g with the overwritten positions zeroed;   dsrc = g[target] (in src's used block).
    """

    def forward(self, x, src, axis, index):
        xp = get_array_module(x)
        self.target = _target(index, axis, xp)
        self.index_shape, self.src_shape = index.shape, getattr(src, "shape", None)
        self.written = xp.zeros(x.shape, dtype=bool)
        self.written[self.target] = True
        out = x.copy()
        out[self.target] = _head(src, index.shape) if self.src_shape is not None else src
        return out

    def backward(self, g):
        dx = get_array_module(g).where(self.written, 0, g)
        dsrc = None
        if self.src_shape is not None:
            dsrc = _into_head(g[self.target], self.src_shape)
        return dx, dsrc


def scatter(x, dim, index, src=None, value=None, reduce=None):
    """torch.scatter(input, dim, index, src) or (..., value=); ``reduce='add'|'multiply'``."""
    from ..tensor import Tensor
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter(): expected src (a tensor) or value (a number)")
    if reduce is not None:
        modes = {"add": "sum", "multiply": "prod"}
        if reduce not in modes:
            raise RuntimeError(f"scatter(): reduce argument must be 'add' or 'multiply', got "
                               f"{reduce!r}")
        if not isinstance(src, Tensor):
            src = Tensor._wrap(get_array_module(x.data).full(index.shape, src, dtype=x.dtype))
        return scatter_reduce(x, dim, index, src, modes[reduce])
    index, axis = _index(index, x, dim, "scatter")
    if isinstance(src, Tensor):
        _same_dtype("scatter", x, src)
        _check("scatter", x, axis, index, src.shape)
    else:
        _check("scatter", x, axis, index)
    return Scatter.apply(x, src, axis, index)


def _index(index, x, dim, op):
    from ..tensor import Tensor
    data = index.data if isinstance(index, Tensor) else get_array_module(x.data).asarray(index)
    (axis,) = normalize_dims(dim, x.ndim, op) if x.ndim else (0,)
    return data, axis


def _same_dtype(op, x, src):
    if x.dtype != src.dtype:
        raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype, got "
                           f"{x.dtype} and {src.dtype}")


# ----- scatter_reduce -----------------------------------------------------------------------

class ScatterReduce(Function):
    """out[p] = reduce({x[p] if include_self} + {src[j] : target[j] = p}) at the positions p
    that receive a value; out[p] = x[p] elsewhere.

    With n_p the number of values combined at p (x[p] counted when include_self):
        sum    dx = g (hit and include_self, or not hit),    dsrc_j = g[p_j]
        mean   dx = g / n_p,                                 dsrc_j = g[p_j] / n_p
        prod   d/dv = g * (product of the other values at p)   (zero-safe, as CumProd)
        amax   d/dv = g / (number of values equal to out[p]) where v == out[p], else 0
    """

    def forward(self, x, src, axis, index, reduce, include_self):
        xp = get_array_module(x)
        target = _target(index, axis, xp)
        s = _head(src, index.shape)
        counts = xp.zeros(x.shape, dtype=xp.int64)
        _at("add", xp, counts, target, xp.ones(index.shape, dtype=xp.int64))
        hit = counts > 0
        if reduce in ("sum", "mean"):
            out = x.copy() if include_self else xp.where(hit, 0, x).astype(x.dtype)
            _at("add", xp, out, target, s)
            if reduce == "mean":
                n = xp.maximum(counts + include_self, 1)
                mean = out // n if x.dtype.kind in "iu" else out / n
                out = xp.where(hit, mean, out).astype(x.dtype)
        elif reduce == "prod":
            out = x.copy() if include_self else xp.where(hit, 1, x).astype(x.dtype)
            _at("multiply", xp, out, target, s)
        else:
            ufunc = "maximum" if reduce == "amax" else "minimum"
            out = x.copy()
            if not include_self:   # start from the identity of max (min) where src lands
                if x.dtype.kind == "f":
                    start = -xp.inf if reduce == "amax" else xp.inf
                else:
                    info = xp.iinfo(x.dtype)
                    start = info.min if reduce == "amax" else info.max
                out = xp.where(hit, start, x).astype(x.dtype)
            _at(ufunc, xp, out, target, s)
        self.target, self.counts, self.hit = target, counts, hit
        self.reduce, self.include_self = reduce, include_self
        self.src_shape, self.index_shape = src.shape, index.shape
        self.save_for_backward(x, src, out)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        x, src, out = self.saved
        s = _head(src, self.index_shape)
        target, hit, keep = self.target, self.hit, self.include_self
        if self.reduce == "sum":
            per_x, dsrc = (g if keep else 0), g[target]
        elif self.reduce == "mean":
            counts = self.counts + keep                                # integers: a constant
            n = get_array_module(counts).maximum(counts, 1).astype(g.dtype)
            per_x, dsrc = (g / n if keep else 0), (g / n)[target]
        elif self.reduce == "prod":
            per_x, dsrc = self._prod_grads(xp, g, x, s, out)
        else:
            per_x, dsrc = self._extremum_grads(xp, g, x, s, out)
        dx = xp.where(hit, per_x, g)
        return dx, _into_head(dsrc, self.src_shape)

    def _extremum_grads(self, xp, g, x, s, out):
        """amax/amin: the values equal to out[p] share g[p] equally. Which values win is a
        piecewise-constant mask, read from the arrays (constant for a second derivative)."""
        x, s, out = _data(x), _data(s), _data(out)
        rx = get_array_module(out)
        ties = (x == out) & self.include_self
        wins = s == out[self.target]
        n_ties = ties.astype(g.dtype)
        _at("add", rx, n_ties, self.target, wins.astype(g.dtype))
        share = g / rx.maximum(n_ties, 1)
        return xp.where(ties, share, 0), xp.where(wins, share[self.target], 0)

    def _prod_grads(self, xp, g, x, s, out):
        """d out[p] / dv = product of the other values at p: out / v when v != 0; when v is the
        only zero at p, the product of the non-zero values; else 0."""
        keep, target = self.include_self, self.target
        if records_graph(g):
            return self._prod_grads_recorded(g, x, s, out)
        n_zeros = ((x == 0) & keep).astype(xp.int64)
        _at("add", xp, n_zeros, target, (s == 0).astype(xp.int64))
        nonzero_prod = xp.where(x == 0, 1, x).astype(g.dtype) if keep else xp.ones_like(g)
        _at("multiply", xp, nonzero_prod, target, xp.where(s == 0, 1, s))

        def grad(v, g_p, out_p, zeros_p, nz_p):
            only_zero = g_p * xp.where(zeros_p == 1, nz_p, 0)
            return xp.where(v == 0, only_zero, g_p * out_p / xp.where(v == 0, 1, v))

        per_x = grad(x, g, out, n_zeros, nonzero_prod) if keep else 0
        dsrc = grad(s, g[target], out[target], n_zeros[target], nonzero_prod[target])
        return per_x, dsrc

    def _prod_grads_recorded(self, g, x, s, out):
        """The same derivative, out / v, as Tensor ops (create_graph=True); defined there only
        when no combined value is 0 (the zero-safe product is not differentiable here)."""
        keep, target = self.include_self, self.target
        if (keep and bool((_data(x)[self.hit] == 0).any())) or bool((_data(s) == 0).any()):
            raise RuntimeError(
                "scatter_reduce(reduce='prod') cannot be differentiated twice "
                "(create_graph=True) when one of the multiplied values is 0; its first "
                "derivative (create_graph=False) is supported")
        xp = get_array_module(g)
        per_x = g * out / xp.where(self.hit, x, 1) if keep else 0   # x where no src lands: 1
        return per_x, g[target] * out[target] / s


def _data(a):
    """The array of a Tensor (create_graph=True hands backward Tensors), or the array itself."""
    return a.data if records_graph(a) else a


def _into_head(values, shape):
    """zeros(shape) with ``values`` in its leading block (the adjoint of ``_head``)."""
    block = tuple(slice(0, n) for n in values.shape)
    return scatter_back(values, shape, block, advanced=False)


def scatter_reduce(x, dim, index, src, reduce, include_self=True):
    """torch.scatter_reduce(input, dim, index, src, reduce, include_self=True)."""
    if reduce not in REDUCTIONS:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of {REDUCTIONS}, "
                           f"got {reduce!r}")
    index, axis = _index(index, x, dim, "scatter_reduce")
    _same_dtype("scatter_reduce", x, src)
    _check("scatter_reduce", x, axis, index, src.shape)
    return ScatterReduce.apply(x, src, axis, index, reduce, bool(include_self))


def scatter_add(x, dim, index, src):
    """out = x, then out[target] += src (repeated positions add up)."""
    return scatter_reduce(x, dim, index, src, "sum", include_self=True)


# ----- selection ----------------------------------------------------------------------------

class IndexSelect(Function):
    """y = x[..., index, ...] (a 1-D index along ``axis``);   dx[..., i, ...] = sum of dy over
    the positions that selected i."""

    def forward(self, x, axis, index):
        xp = get_array_module(x)
        self.in_shape, self.axis, self.index = x.shape, axis, index
        return xp.take(x, index, axis=axis)

    def backward(self, g):
        return scatter_back(g, self.in_shape, along(self.axis, self.index))


def index_select(x, dim, index):
    from .shape import reshape
    index, axis = _index(index, x, dim, "index_select")
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got shape "
                         f"{tuple(index.shape)}")
    if index.dtype.kind not in "iu":
        raise IndexError(f"index_select(): Expected dtype int32/int64 for index, got "
                         f"{index.dtype}")
    if x.ndim == 0:
        return reshape(index_select(reshape(x, 1), 0, index.reshape(-1)), ())
    index = index.reshape(-1)
    n = x.shape[axis]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= n):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexError(f"index_select(): index {bad} is out of bounds for dimension {axis} "
                         f"with size {n}")
    return IndexSelect.apply(x, axis, index)


def masked_select(x, mask):
    """The elements of x where mask is True, as a 1-D tensor (x and mask broadcast together).
    Made of expand and boolean indexing, whose backward scatters the gradient back."""
    from ..tensor import Tensor
    from .indexing import getitem
    from .shape import expand
    xp = get_array_module(x.data)
    m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype != bool:
        raise RuntimeError(f"masked_select: expected a bool mask, got {m.dtype}")
    try:
        shape = np.broadcast_shapes(x.shape, m.shape)
    except ValueError:
        raise RuntimeError(f"masked_select: the mask of shape {tuple(m.shape)} does not "
                           f"broadcast with the input of shape {tuple(x.shape)}") from None
    return getitem(expand(x, *shape), Tensor._wrap(xp.broadcast_to(m, shape)))


def nonzero(x, as_tuple=False):
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or one 1-D tensor per dim
    with ``as_tuple=True``. No gradient (indices are integers)."""
    from ..tensor import Tensor
    xp = get_array_module(x.data)
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    where = [w.astype(xp.int64) for w in xp.nonzero(data)]
    if as_tuple:
        return tuple(Tensor._wrap(w) for w in where)
    if x.ndim == 0:
        return Tensor._wrap(xp.zeros((where[0].size, 0), dtype=xp.int64))
    return Tensor._wrap(xp.stack(where, axis=1) if where else xp.zeros((0, 0), xp.int64))


def one_hot(x, num_classes=-1):
    """F.one_hot: an int64 tensor of shape x.shape + (num_classes,) with a 1 at each class
    (num_classes=-1: one more than the largest class). No gradient."""
    from ..tensor import Tensor
    xp = get_array_module(x.data)
    if x.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensor of dtype int64, got "
                           f"{x.dtype}")
    data = x.data
    if data.size and int(data.min()) < 0:
        raise RuntimeError(f"one_hot: Class values must be non-negative, got {int(data.min())}")
    if num_classes == -1:
        if not data.size:
            raise RuntimeError("one_hot: Can not infer total number of classes from empty "
                               "tensor")
        num_classes = int(data.max()) + 1
    if data.size and int(data.max()) >= num_classes:
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes "
                           f"({num_classes}), got {int(data.max())}")
    classes = xp.arange(num_classes, dtype=xp.int64)
    return Tensor._wrap((data[..., None] == classes).astype(xp.int64))
