"""Second derivatives through the shape, movement and pad ops (create_graph=True).

Each op is linear, so its backward is A^T g: gradgradcheck checks that the recorded backward
depends on g through the right adjoint and not on x, alone and inside x -> op(x)^2
(tests/second_order_checks.py); PyTorch parity of the Hessian-vector product on fixed cases.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst
from second_order_checks import check_linear_op, squared, torch_parity

SMALL = settings(max_examples=10, deadline=None)


def arrays(min_dims=0, max_dims=3, max_side=3):
    return tst.arrays(shape=tst.shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side))


@SMALL
@given(arrays(), st.data())
def test_reshape_family(x, data):
    sizes = data.draw(st.permutations(list(x.shape) + [1]))
    check_linear_op(lambda a: a.reshape(*sizes), x)
    check_linear_op(lambda a: ops.unsqueeze(ops.flatten(a), 0).squeeze(), x)


@SMALL
@given(arrays(min_dims=1), st.data())
def test_permute_transpose(x, data):
    perm = data.draw(st.permutations(range(x.ndim)))
    d0, d1 = data.draw(st.integers(-x.ndim, x.ndim - 1)), data.draw(st.integers(0, x.ndim - 1))
    check_linear_op(lambda a: a.permute(*perm).transpose(d0, d1), x)


@SMALL
@given(st.data())
def test_expand(data):
    small, big = data.draw(tst.broadcastable_shapes(2, max_side=3))
    target = np.broadcast_shapes(small, big)
    x = data.draw(tst.arrays(shape=st.just(small)))
    check_linear_op(lambda a: a.expand(*target), x)         # size-1 and leading axes summed


@SMALL
@given(arrays(), st.data())
def test_repeat(x, data):
    reps = data.draw(st.lists(st.integers(1, 2), min_size=x.ndim, max_size=x.ndim + 1))
    check_linear_op(lambda a: a.repeat(*reps), x)


@SMALL
@given(arrays(min_dims=1), st.data())
def test_repeat_interleave(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[dim],
                                max_size=x.shape[dim]))
    check_linear_op(lambda a: a.repeat_interleave(tg.tensor(counts), dim), x)
    check_linear_op(lambda a: a.repeat_interleave(2), x)


@SMALL
@given(arrays(min_dims=1), st.data())
def test_flip_roll(x, data):
    dims = data.draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
    shifts = data.draw(st.lists(st.integers(-4, 4), min_size=len(dims), max_size=len(dims)))
    check_linear_op(lambda a: a.flip(*dims).roll(shifts, dims), x)
    check_linear_op(lambda a: a.roll(shifts[0]), x)


@SMALL
@given(arrays(min_dims=2), st.integers(-2, 2))
def test_tril_triu(x, k):
    check_linear_op(lambda a: a.tril(k) * 2 + a.triu(k), x)


@SMALL
@given(arrays(min_dims=1), st.data())
def test_unfold(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    size = data.draw(st.integers(1, x.shape[dim]))
    step = data.draw(st.integers(1, 2))
    check_linear_op(lambda a: a.unfold(dim, size, step), x)  # overlapping windows add up


@SMALL
@given(st.lists(arrays(min_dims=1, max_dims=1), min_size=1, max_size=3),
       st.sampled_from(["ij", "xy"]))
def test_meshgrid(vectors, indexing):
    check_linear_op(lambda *ts: ops.meshgrid(*ts, indexing=indexing), *vectors)


@SMALL
@given(arrays(min_dims=1, max_dims=2, max_side=4), st.data())
def test_pad(x, data):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    widths = []
    for k in range(data.draw(st.integers(1, x.ndim))):
        n = x.shape[-1 - k]
        hi = n - 1 if mode == "reflect" else n
        lo = -(n // 2) if mode == "constant" else 0           # constant mode may crop
        widths += [data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))]
    check_linear_op(lambda a: ops.pad(a, widths, mode=mode), x)


# ----- PyTorch parity of the Hessian-vector product ------------------------------------------

X = np.random.default_rng(3).standard_normal((2, 3, 4))


def test_torch_parity_shapes():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
            (lambda a: a.reshape(4, 6).permute(1, 0), lambda a: a.reshape(4, 6).permute(1, 0)),
            (lambda a: a[:, :1].expand(2, 3, 4), lambda a: a[:, :1].expand(2, 3, 4)),
            (lambda a: a.repeat(2, 1, 1, 2), lambda a: a.repeat(2, 1, 1, 2)),
            (lambda a: a.repeat_interleave(tg.tensor([2, 0, 3]), 1),
             lambda a: a.repeat_interleave(torch.tensor([2, 0, 3]), 1)),
            (lambda a: a.flip(0, 2).roll((1, -2), (0, 2)),
             lambda a: a.flip(0, 2).roll((1, -2), (0, 2))),
            (lambda a: a.tril(1) + a.triu(-1) * 3, lambda a: a.tril(1) + a.triu(-1) * 3),
            (lambda a: a.unfold(2, 3, 1), lambda a: a.unfold(2, 3, 1))]:
        torch_parity(squared(ours), squared(theirs), X)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_torch_parity_pad(mode):
    torch = pytest.importorskip("torch")
    widths = (2, 1, 1, 0) if mode != "constant" else (2, -1, 1, 3)
    torch_parity(squared(lambda a: ops.pad(a, widths, mode=mode)),
                 squared(lambda a: torch.nn.functional.pad(a, widths, mode=mode)), X)
