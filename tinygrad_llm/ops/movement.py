"""Movement ops that copy values to new places: repeat, repeat_interleave, flip, roll, tril,
triu, unflatten, unfold, meshgrid.

Each output element is one input element (or a zero, for tril/triu), so each backward sends
the gradient back to where the value came from; where one input element fed several outputs
(repeat, repeat_interleave, overlapping unfold windows), its gradients are summed.
"""
from ..autograd import Function
from ..backend import get_array_module
from .indexing import along, scatter_back
from .reduce import normalize_dims
from .shape import _shape_arg, expand, reshape


def _axis(x, dim, op):
    (axis,) = normalize_dims(dim, x.ndim, op)
    return axis


# ----- repeat -------------------------------------------------------------------------------

class Repeat(Function):
    """y = x tiled ``repeats[d]`` times along each dim d (PyTorch's Tensor.repeat, NumPy's tile).

    dx = the sum of the copies: view dy of shape (r_0 n_0, r_1 n_1, ...) as
    (r_0, n_0, r_1, n_1, ...) and sum over the r axes.
    """

    def forward(self, x, repeats):
        xp = get_array_module(x)
        self.in_shape, self.repeats = x.shape, repeats
        x = x.reshape((1,) * (len(repeats) - x.ndim) + x.shape)   # leading dims are new
        self.padded = x.shape
        return xp.tile(x, repeats)

    def backward(self, g):
        xp = get_array_module(g)
        split = []                                   # (r_0, n_0, r_1, n_1, ...)
        for r, n in zip(self.repeats, self.padded):
            split += [r, n]
        g = xp.sum(xp.reshape(g, split), axis=tuple(range(0, len(split), 2)))
        return xp.reshape(g, self.in_shape)


def repeat(x, *repeats):
    repeats = _shape_arg(repeats)
    if len(repeats) < x.ndim:
        raise RuntimeError(f"repeat: number of dimensions of repeat dims ({len(repeats)}) can "
                           f"not be smaller than number of dimensions of tensor ({x.ndim})")
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"repeat: repeats must be non-negative, got {repeats}")
    return Repeat.apply(x, tuple(int(r) for r in repeats))


# ----- repeat_interleave --------------------------------------------------------------------

class RepeatInterleave(Function):
    """y = each slice x[i] along ``axis`` repeated r_i times in a row (NumPy's repeat).

    dx[i] = the sum of dy over the r_i output slices that copied x[i]: a scatter-add of dy
    into position source[j] for each output position j, source = [0]*r_0 + [1]*r_1 + ...
    """

    def forward(self, x, repeats, axis):
        xp = get_array_module(x)
        self.in_shape, self.axis = x.shape, axis
        self.source = xp.repeat(xp.arange(x.shape[axis]), repeats)    # output j <- input
        return xp.take(x, self.source, axis=axis)

    def backward(self, g):
        return scatter_back(g, self.in_shape, along(self.axis, self.source))


def repeat_interleave(x, repeats=None, dim=None, output_size=None):
    """PyTorch's repeat_interleave: ``repeats`` an int or a 1-D tensor (one count per slice);
    ``dim=None`` flattens first. ``repeat_interleave(counts)`` alone repeats 0, 1, 2, ..."""
    from ..tensor import Tensor
    xp = get_array_module(x.data)
    if repeats is None:                     # torch.repeat_interleave(repeats)
        counts = x
        x = Tensor._wrap(xp.arange(counts.shape[0] if counts.ndim else 1, dtype=xp.int64))
        repeats, dim = counts, 0
    if dim is None:
        x, dim = reshape(x, -1), 0
    axis = _axis(x, dim, "repeat_interleave") if x.ndim else 0
    if x.ndim == 0:
        x = reshape(x, 1)
    if isinstance(repeats, Tensor):
        r = repeats.data.reshape(-1)
        if r.dtype.kind not in "iu":
            raise RuntimeError(f"repeat_interleave: repeats must be an integer tensor, got "
                               f"{r.dtype}")
        if r.size not in (1, x.shape[axis]):
            raise RuntimeError(f"repeat_interleave: repeats must have the same size as input "
                               f"along dim {axis} ({x.shape[axis]}), got {r.size}")
        repeats = int(r[0]) if r.size == 1 else r
    if xp.any(xp.asarray(repeats) < 0):
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    out = RepeatInterleave.apply(x, repeats, axis)
    if output_size is not None and out.shape[axis] != output_size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"output's size {out.shape[axis]}")
    return out


# ----- flip and roll ------------------------------------------------------------------------

class Flip(Function):
    """y = x reversed along the axes;   dx = dy reversed along the same axes."""

    def forward(self, x, axes):
        self.axes = axes
        return get_array_module(x).flip(x, axes)

    def backward(self, g):
        return get_array_module(g).flip(g, self.axes)


def flip(x, *dims):
    dims = _shape_arg(dims)
    axes = normalize_dims(dims, x.ndim, "flip") if x.ndim else ()
    return Flip.apply(x, axes)


class Roll(Function):
    """y = x shifted cyclically: y[(i + s) mod n] = x[i];   dx = dy rolled back by -s."""

    def forward(self, x, shifts, axes):
        self.shifts, self.axes = shifts, axes
        return get_array_module(x).roll(x, shifts, axes)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if self.axes is not None else -self.shifts
        return get_array_module(g).roll(g, back, self.axes)


def roll(x, shifts, dims=None):
    """Roll along ``dims`` (None: the flattened tensor, then the shape is restored)."""
    if dims is None:
        if not isinstance(shifts, int):
            raise RuntimeError(f"roll: with dims=None, shifts must be one int, got {shifts}")
        return Roll.apply(x, shifts, None)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    axes = tuple(_axis(x, d, "roll") for d in dims)
    return Roll.apply(x, shifts, axes)


# ----- triangles ----------------------------------------------------------------------------

class Triangle(Function):
    """tril: y_ij = x_ij where j - i <= k, else 0;  triu: where j - i >= k.
    dx = dy with the same entries zeroed (on the last two dims; leading dims are a batch)."""

    def forward(self, x, k, upper):
        xp = get_array_module(x)
        rows, cols = x.shape[-2:]
        offset = xp.arange(cols)[None, :] - xp.arange(rows)[:, None]     # j - i, (rows, cols)
        self.keep = offset >= k if upper else offset <= k
        return xp.where(self.keep, x, 0).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        return xp.astype(xp.where(self.keep, g, 0), g.dtype, copy=False)


def _triangle(x, diagonal, upper):
    if x.ndim < 2:
        name = "triu" if upper else "tril"
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(x.shape)}")
    return Triangle.apply(x, int(diagonal), upper)


def tril(x, diagonal=0):
    return _triangle(x, diagonal, upper=False)


def triu(x, diagonal=0):
    return _triangle(x, diagonal, upper=True)


# ----- unflatten and unfold -----------------------------------------------------------------

def unflatten(x, dim, sizes):
    """Split axis ``dim`` into ``sizes`` (one may be -1): a reshape."""
    axis = _axis(x, dim, "unflatten")
    sizes = tuple(sizes)
    known = 1
    for s in sizes:
        known *= s if s != -1 else 1
    n = x.shape[axis]
    fits = known == n if -1 not in sizes else known > 0 and n % known == 0
    if not fits or sizes.count(-1) > 1:
        raise RuntimeError(f"unflatten: provided sizes {sizes} don't multiply up to the size "
                           f"of dim {dim} ({n}) in the input tensor")
    return reshape(x, *(x.shape[:axis] + sizes + x.shape[axis + 1:]))


class Unfold(Function):
    """Windows of length ``size`` every ``step`` along ``axis``, as a new last axis:

        y[..., w, ..., s] = x[..., w * step + s, ...]
        dx[..., w * step + s, ...] += dy[..., w, ..., s]   (overlapping windows add)
    """

    def forward(self, x, axis, size, step):
        xp = get_array_module(x)
        n_windows = (x.shape[axis] - size) // step + 1
        self.in_shape, self.axis = x.shape, axis
        self.source = xp.arange(n_windows)[:, None] * step + xp.arange(size)[None, :]  # (W, S)
        y = xp.take(x, self.source, axis=axis)           # (..., W, S, ...)
        return xp.moveaxis(y, axis + 1, -1)              # (..., W, ..., S)

    def backward(self, g):
        g = get_array_module(g).moveaxis(g, -1, self.axis + 1)    # (..., W, S, ...)
        return scatter_back(g, self.in_shape, along(self.axis, self.source))


def unfold(x, dimension, size, step):
    """Tensor.unfold: every window of ``size`` elements, ``step`` apart, along ``dimension``."""
    if x.ndim == 0:
        x = reshape(x, 1)
    axis = _axis(x, dimension, "unfold")
    if not 0 <= size <= x.shape[axis]:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {axis} is "
                           f"{x.shape[axis]} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    return Unfold.apply(x, axis, size, step)


# ----- meshgrid -----------------------------------------------------------------------------

def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids: with n 1-D inputs of sizes (s_1, ..., s_n), output k is input k
    broadcast along every other axis ('ij': shape (s_1, ..., s_n); 'xy': the first two sizes
    swapped). Made of reshape and expand, so its gradient sums over the broadcast axes."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0-D or 1-D tensors, got shape "
                               f"{tuple(t.shape)}")
    flat = [reshape(t, -1) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    sizes = tuple(t.shape[0] for t in flat)
    grids = []
    for k, t in enumerate(flat):
        shape = [1] * len(flat)
        shape[k] = sizes[k]
        grids.append(expand(reshape(t, *shape), *sizes))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)
