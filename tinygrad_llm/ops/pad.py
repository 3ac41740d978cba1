"""F.pad: constant, reflect, replicate and circular padding, with PyTorch's pad tuple.

``pad = (left_last, right_last, left_2nd_last, right_2nd_last, ...)``: pairs start at the
last dim and go backwards (PyTorch's order, the reverse of NumPy's).

Constant mode: y = x surrounded by ``value`` (negative amounts crop); dx = the slice of dy
where x was placed. The other modes read every output position from one input position
along each padded axis (an index map ``source``):

    reflect    ... x2 x1 | x0 x1 x2 ... x_{n-1} | x_{n-2} ...   (the edge is not repeated)
    replicate  ... x0 x0 | x0 x1 ... x_{n-1} | x_{n-1} ...
    circular   ... x_{n-1} | x0 x1 ... x_{n-1} | x0 ...

so y = take(x, source, axis) one axis at a time, and dx is the scatter-add of dy through the
same maps in reverse order (an edge element read several times gets the sum).
"""
from ..autograd import Function
from ..backend import get_array_module
from .indexing import along, scatter_back

MODES = ("constant", "reflect", "replicate", "circular")


class ConstantPad(Function):
    """y = x placed inside a block of ``value``; dx = dy[the block where x was placed]."""

    def forward(self, x, widths, value):
        xp = get_array_module(x)
        self.full_shape = x.shape
        self.crop = tuple(slice(max(-lo, 0), n - max(-hi, 0))
                          for (lo, hi), n in zip(widths, x.shape))       # negative pads crop
        x = x[self.crop]
        self.in_shape = x.shape
        grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        self.place = tuple(slice(lo, lo + n) for (lo, _), n in zip(grow, x.shape))
        out_shape = tuple(lo + n + hi for (lo, hi), n in zip(grow, x.shape))
        y = xp.full(out_shape, value, dtype=x.dtype)
        y[self.place] = x
        return y

    def backward(self, g):
        return scatter_back(g[self.place], self.full_shape, self.crop, advanced=False)


def _source(n, lo, hi, mode, xp):
    """For each output position p in [-lo, n + hi), the input position it copies."""
    p = xp.arange(-lo, n + hi)
    if mode == "replicate":
        return xp.clip(p, 0, n - 1)
    if mode == "circular":
        return p % n
    p = xp.abs(p)                                  # reflect: mirror at 0 ...
    return (n - 1) - xp.abs((n - 1) - p)           # ... and at n - 1


class IndexPad(Function):
    """y = x read through one index map per padded axis: y = take(x, source_a, axis=a) ...;
    dx = the adjoint: scatter-add dy back through the maps, last axis first."""

    def forward(self, x, widths, mode):
        xp = get_array_module(x)
        self.maps = []                                   # (axis, source, input length)
        for axis, (lo, hi) in enumerate(widths):
            if lo or hi:
                source = _source(x.shape[axis], lo, hi, mode, xp)
                self.maps.append((axis, source, x.shape[axis]))
                x = xp.take(x, source, axis=axis)
        return x

    def backward(self, g):
        for axis, source, n in reversed(self.maps):
            shape = g.shape[:axis] + (n,) + g.shape[axis + 1:]
            g = scatter_back(g, shape, along(axis, source))
        return g


def _widths(pad, ndim):
    """PyTorch's flat pad tuple -> NumPy's ((lo, hi) per axis)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"pad: padding length must be even and at most 2 * ndim "
                         f"({2 * ndim}), got pad={pad}")
    widths = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        widths[ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return widths


def pad(x, pad, mode="constant", value=None):
    """F.pad(input, pad, mode='constant', value=None)."""
    if mode not in MODES:
        raise NotImplementedError(f"pad: mode must be one of {MODES}, got {mode!r}")
    widths = _widths(pad, x.ndim)
    if mode == "constant":
        for (lo, hi), n in zip(widths, x.shape):
            if n + lo + hi < 0:
                raise RuntimeError(f"pad: padding {pad} would give a negative size for an "
                                   f"input of shape {tuple(x.shape)}")
        return ConstantPad.apply(x, widths, 0 if value is None else value)
    if value not in (None, 0):
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take in value argument")
    for axis, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
        if lo < 0 or hi < 0:
            raise RuntimeError(f"pad: negative padding {pad} is only supported in constant mode")
        if mode == "reflect" and (lo >= n or hi >= n) and (lo or hi):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({lo}, {hi}) at dimension {axis} "
                               f"of input {tuple(x.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError(f"pad: padding value causes wrapping around more than once "
                               f"(padding ({lo}, {hi}) at dimension {axis} of size {n})")
        if mode == "replicate" and n == 0 and (lo or hi):
            raise RuntimeError(f"pad: cannot replicate-pad the empty dimension {axis}")
    return IndexPad.apply(x, widths, mode)
