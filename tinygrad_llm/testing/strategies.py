"""Hypothesis strategies for property-based tests of ops and gradients (needs ``hypothesis``).

    from hypothesis import given
    from tinygrad_llm.testing import strategies as tst

    @given(tst.arrays(shape=tst.shapes(max_dims=3)))
    def test_tanh_grad(x):
        ...

Elements are always bounded and finite (no NaN, inf or subnormals) unless a strategy is about
extreme values. Kinks and ties are excluded by construction (bands and gaps), never by
``assume``, so hypothesis does not give up on filtering.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Sizes that catch tiling and vectorisation bugs: 1, odd, and both sides of powers of two.
KERNEL_SIZES = (1, 2, 3, 7, 13, 31, 32, 33, 97, 257)


def floats(lo=-10.0, hi=10.0, dtype=np.float64, avoid=(), margin=1e-3):
    """Finite floats in [lo, hi]; with ``avoid``, none within ``margin`` of those points."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    if not avoid:
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=width)
    edges = [lo] + sorted(p for p in avoid if lo < p < hi) + [hi]
    bands = []
    for k in range(len(edges) - 1):
        pad = margin * (1 + 1e-6)  # a hair more, so that rounding cannot land inside the margin
        a = edges[k] + (pad if k > 0 else 0)
        b = edges[k + 1] - (pad if k < len(edges) - 2 else 0)
        if a < b:
            bands.append(st.floats(a, b, allow_nan=False, allow_infinity=False,
                                   allow_subnormal=False, width=width))
    return st.one_of(*bands)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes; the defaults keep gradchecks at most 64 elements."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(dtype=np.float64, shape=None, elements=None):
    """Arrays of ``dtype`` (float64 by default) with bounded finite elements."""
    return hnp.arrays(dtype, shape if shape is not None else shapes(),
                      elements=elements if elements is not None else floats(dtype=dtype))


def positive(shape=None, lo=0.1, hi=10.0, dtype=np.float64):
    """Arrays bounded away from 0: domains of log, sqrt, division."""
    return arrays(dtype, shape, floats(lo, hi, dtype))


def away_from(points, shape=None, margin=1e-3, lo=-10.0, hi=10.0, dtype=np.float64):
    """Arrays with no element within ``margin`` of the given kinks (relu/abs: 0, clamp: bounds)."""
    return arrays(dtype, shape, floats(lo, hi, dtype, avoid=tuple(points), margin=margin))


@st.composite
def distinct(draw, shape=None, min_gap=1e-2, dtype=np.float64):
    """Arrays whose values differ pairwise by at least ``min_gap``: no ties for max/sort."""
    shape = draw(shape if shape is not None else shapes())
    n = int(np.prod(shape, dtype=np.int64))
    perm = draw(st.permutations(list(range(n))))
    jitter = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0, 0.25 * min_gap)))
    offset = draw(st.floats(-5, 5))
    # Neighbours are 1.5 gaps apart, and the jitter moves each by at most 0.25 gaps.
    values = np.asarray(perm, dtype=np.float64) * (1.5 * min_gap) + jitter + offset
    return values.reshape(shape).astype(dtype)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4):
    """Tuples of ``num_shapes`` shapes that broadcast together (with size-1 and 0-d cases)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                             max_dims=max_dims, max_side=max_side).map(
        lambda r: r.input_shapes)


def matmul_shapes(max_batch_dims=2, max_side=4):
    """(shape_a, shape_b) valid for a @ b, with 1-D operands and broadcast batch axes."""
    return hnp.mutually_broadcastable_shapes(
        signature="(n?,k),(k,m?)->(n?,m?)", max_dims=max_batch_dims, max_side=max_side).map(
        lambda r: r.input_shapes)


@st.composite
def dims(draw, ndim, allow_none=True, allow_tuple=True):
    """A ``dim`` argument for a reduction over a tensor of ``ndim`` dims (negative included)."""
    options = [st.none()] if allow_none or ndim == 0 else []
    if ndim > 0:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                    unique=True).map(tuple))
    return draw(st.one_of(*options))


def labels(n_classes, shape):
    """Integer class labels in [0, n_classes) (int64)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(0, n_classes - 1))


@st.composite
def indices(draw, size, shape=None, min_duplicates=1):
    """Integer indices into an axis of ``size`` that repeat at least one value (when possible):
    the case where gather/embedding gradients must accumulate."""
    shape = draw(shape if shape is not None else shapes(min_dims=1, max_dims=2))
    n = int(np.prod(shape, dtype=np.int64))
    idx = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, size - 1)))
    if n >= 2 and min_duplicates:
        idx[-1] = idx[0]  # force a repeat
    return idx.reshape(shape)


@st.composite
def logits(draw, shape=None, scales=(1.0, 1e2, 1e4), dtype=np.float64, masked=False):
    """Logits at an extreme scale (drawn from ``scales``); with ``masked``, some -inf entries
    but never a whole row."""
    shape = draw(shape if shape is not None else shapes(min_dims=1, max_dims=3))
    scale = draw(st.sampled_from(scales))
    base = draw(hnp.arrays(np.float64, shape, elements=floats(-1, 1)))
    out = (base * scale).astype(dtype)
    if masked and out.size:
        mask = draw(hnp.arrays(np.bool_, shape))
        mask[..., 0] = False  # keep one finite entry per row
        out[mask] = -np.inf
    return out


def kernel_shapes(max_rows=257, max_cols=257):
    """(rows, cols) for kernel tests, drawn from sizes that stress tiling: 1, odd, 2^k +- 1."""
    rows = st.sampled_from([s for s in KERNEL_SIZES if s <= max_rows])
    cols = st.sampled_from([s for s in KERNEL_SIZES if s <= max_cols])
    return st.tuples(rows, cols)


@st.composite
def strided(draw, array):
    """The same values as a non-contiguous view: transposed, every other element, or reversed."""
    kind = draw(st.sampled_from(["transpose", "step", "reverse"]))
    if kind == "transpose" and array.ndim >= 2:
        return np.ascontiguousarray(np.swapaxes(array, -1, -2)).swapaxes(-1, -2)
    if kind == "step":
        big = np.repeat(array, 2, axis=-1) if array.ndim else array
        return big[..., ::2] if array.ndim else big
    return np.ascontiguousarray(array[..., ::-1])[..., ::-1] if array.ndim else array
