"""repeat, repeat_interleave, flip, roll, tril/triu, unflatten, unfold, meshgrid, F.pad and
einsum: float64 gradchecks on awkward shapes and PyTorch parity (values, dtypes, gradients)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity, same_error


def nonempty(min_dims=1, max_dims=3):
    return tst.arrays(shape=tst.shapes(min_dims=min_dims, max_dims=max_dims))


@given(nonempty(min_dims=0), st.data())
def test_repeat_grad(x, data):
    reps = data.draw(st.lists(st.integers(0, 3), min_size=x.ndim, max_size=x.ndim + 1))
    check_grad(lambda a: a.repeat(*reps), x)


@given(nonempty(), st.data())
def test_repeat_interleave_grad(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[dim],
                                max_size=x.shape[dim]))
    check_grad(lambda a: a.repeat_interleave(tg.tensor(counts), dim), x)
    check_grad(lambda a: a.repeat_interleave(2), x)            # dim=None flattens


@given(nonempty(), st.data())
def test_flip_roll_grad(x, data):
    dims = data.draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(dims), max_size=len(dims)))
    check_grad(lambda a: a.flip(*dims).roll(shifts, [d - x.ndim for d in dims]), x)
    check_grad(lambda a: a.roll(shifts[0]), x)


@given(nonempty(min_dims=2), st.integers(-3, 3))
def test_tril_triu_grad(x, k):
    check_grad(lambda a: a.tril(k) * 2 + a.triu(k), x)


@given(nonempty(), st.data())
def test_unfold_grad(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    size = data.draw(st.integers(0, x.shape[dim]))
    step = data.draw(st.integers(1, 3))
    check_grad(lambda a: a.unfold(dim, size, step), x)     # overlapping windows add up


@given(st.lists(tst.arrays(shape=tst.shapes(min_dims=1, max_dims=1)), min_size=1, max_size=3),
       st.sampled_from(["ij", "xy"]))
def test_meshgrid_grad(vectors, indexing):
    check_grad(lambda *ts: tuple(g * (k + 1) for k, g in
                                 enumerate(ops.meshgrid(*ts, indexing=indexing))), *vectors)


@given(tst.arrays(shape=tst.shapes(min_dims=1, max_dims=3)), st.data())
def test_pad_grad(x, data):
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    n_dims = data.draw(st.integers(1, x.ndim))
    widths = []
    for k in range(n_dims):
        n = x.shape[-1 - k]
        hi = n - 1 if mode == "reflect" else n
        lo_bound = -(n // 2) if mode == "constant" else 0     # crop at most half per side
        widths += [data.draw(st.integers(lo_bound, hi)), data.draw(st.integers(lo_bound, hi))]
    check_grad(lambda a: ops.pad(a, widths, mode=mode), x)


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 1)]), ("i,j->ij", [(3,), (1,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]), ("ij,j", [(3, 4), (4,)]),
    ("iij->j", [(2, 2, 3)]), ("ij,kl->", [(2, 3), (4, 1)]), ("...i,...i", [(2, 3), (3,)]),
    ("b h i d, b h j d -> b h i j", [(1, 2, 3, 4), (1, 2, 5, 4)]), ("i->", [(0,)]),
]


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_grad(equation, shapes):
    rng = np.random.default_rng(len(equation))
    check_grad(lambda *ts: ops.einsum(equation, *ts), *[rng.standard_normal(s) for s in shapes])


def test_bad_arguments():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        tg.tensor([1.0, 2.0]).tril()
    with pytest.raises(ValueError, match="subscripts"):
        ops.einsum("ij,jk->ik", tg.ones(2, 3), tg.ones(3))
    with pytest.raises(RuntimeError, match="padding size should be less"):
        ops.pad(tg.ones(1, 3), (3, 0), mode="reflect")
    with pytest.raises(RuntimeError, match="repeat dims"):
        tg.ones(2, 3).repeat(2)


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(2)
X = RNG.standard_normal((2, 3, 4))


def test_parity_repeat_family():
    torch = pytest.importorskip("torch")
    parity(lambda a: a.repeat(2, 1, 1, 3), lambda a: a.repeat(2, 1, 1, 3), X)
    parity(lambda a: a.repeat_interleave(3, dim=1), lambda a: a.repeat_interleave(3, dim=1), X)
    parity(lambda a: a.repeat_interleave(2), lambda a: a.repeat_interleave(2), X)
    counts = np.array([2, 0, 1, 3])
    parity(lambda a, r: a.repeat_interleave(r, dim=-1),
           lambda a, r: a.repeat_interleave(r, dim=-1), X, counts)
    parity(lambda r: ops.repeat_interleave(r), lambda r: torch.repeat_interleave(r), counts)


def test_parity_flip_roll_triangles():
    torch = pytest.importorskip("torch")
    parity(lambda a: a.flip(0, 2), lambda a: a.flip(0, 2), X)
    parity(lambda a: a.roll(5), lambda a: a.roll(5), X)
    parity(lambda a: a.roll((1, -2), (0, 2)), lambda a: a.roll((1, -2), (0, 2)), X)
    for k in (-1, 0, 2):
        parity(lambda a: a.tril(k), lambda a: a.tril(k), X)
        parity(lambda a: a.triu(k), lambda a: torch.triu(a, k), X)


def test_parity_unflatten_unfold_meshgrid():
    torch = pytest.importorskip("torch")
    parity(lambda a: a.unflatten(2, (2, -1)), lambda a: a.unflatten(2, (2, -1)), X)
    parity(lambda a: a.unfold(2, 2, 1), lambda a: a.unfold(2, 2, 1), X)
    parity(lambda a: a.unfold(1, 2, 2), lambda a: a.unfold(1, 2, 2), X)
    u, v = RNG.standard_normal(3), RNG.standard_normal(4)
    for indexing in ("ij", "xy"):
        parity(lambda a, b: ops.meshgrid(a, b, indexing=indexing),
               lambda a, b: torch.meshgrid(a, b, indexing=indexing), u, v)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_parity_pad(mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape, widths in [((2, 3, 5), (1, 2)), ((2, 3, 4, 5), (2, 1, 0, 2)),
                          ((1, 2, 3, 4, 5), (1, 1, 2, 2, 1, 0))]:
        x = RNG.standard_normal(shape)
        parity(lambda a: ops.pad(a, widths, mode), lambda a: F.pad(a, widths, mode), x)
    x = RNG.standard_normal((2, 3, 4))
    parity(lambda a: ops.pad(a, (-1, 2, 1, -1), value=3.0),
           lambda a: F.pad(a, (-1, 2, 1, -1), value=3.0), x)
    ints = np.arange(6).reshape(2, 3)
    parity(lambda a: ops.pad(a, (1, 1)), lambda a: F.pad(a, (1, 1)), ints)


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_parity_einsum(equation, shapes):
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal(s) for s in shapes]
    parity(lambda *ts: ops.einsum(equation, *ts), lambda *ts: torch.einsum(equation, *ts),
           *arrays)


def test_parity_errors():
    torch = pytest.importorskip("torch")
    same_error(lambda: tg.ones(3).tril(), lambda: torch.ones(3).tril())
    same_error(lambda: tg.ones(2, 3).repeat(2), lambda: torch.ones(2, 3).repeat(2))
    same_error(lambda: tg.ones(2, 3).unfold(1, 4, 1), lambda: torch.ones(2, 3).unfold(1, 4, 1))
    same_error(lambda: ops.pad(tg.ones(1, 3), (3, 0), mode="reflect"),
               lambda: torch.nn.functional.pad(torch.ones(1, 3), (3, 0), mode="reflect"))
    same_error(lambda: tg.ones(2, 3).unflatten(1, (2, 2)),
               lambda: torch.ones(2, 3).unflatten(1, (2, 2)))
    same_error(lambda: tg.ones(2, 5).unflatten(1, (2, -1)),
               lambda: torch.ones(2, 5).unflatten(1, (2, -1)))


# ----- check_op: the NumPy reference, gradcheck, the composite twin, PyTorch ------------------

def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


CHECK_OP = [
    ("repeat", lambda a: a.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)),
     lambda a: tg.cat([tg.cat([a] * 3, 2)] * 2, 0), lambda a: a.repeat(2, 1, 3)),
    ("repeat_interleave", lambda a: a.repeat_interleave(2, dim=1),
     lambda a: np.repeat(a, 2, axis=1), None, lambda a: a.repeat_interleave(2, dim=1)),
    ("flip", lambda a: a.flip(2), lambda a: a[..., ::-1],
     lambda a: a[..., [3, 2, 1, 0]], lambda a: a.flip(2)),
    ("roll", lambda a: a.roll(1, 2), lambda a: np.roll(a, 1, 2),
     lambda a: tg.cat([a[..., 3:], a[..., :3]], 2), lambda a: a.roll(1, 2)),
    ("tril", lambda a: a.tril(1), lambda a: np.tril(a, 1),
     lambda a: a * tg.tensor(np.tril(np.ones((3, 4)), 1)), lambda a: a.tril(1)),
    ("unfold", lambda a: a.unfold(2, 2, 1),
     lambda a: np.lib.stride_tricks.sliding_window_view(a, 2, axis=2),
     None, lambda a: a.unfold(2, 2, 1)),
    ("pad_replicate", lambda a: ops.pad(a, (2, 1), "replicate"),
     lambda a: np.pad(a, ((0, 0), (0, 0), (2, 1)), mode="edge"),
     lambda a: tg.cat([a[..., :1], a[..., :1], a, a[..., 3:]], 2),
     lambda a: _torch().nn.functional.pad(a, (2, 1), "replicate")),
    ("einsum", lambda a: ops.einsum("bij,bkj->bik", a, a),
     lambda a: np.einsum("bij,bkj->bik", a, a), lambda a: a @ a.transpose(1, 2),
     lambda a: _torch().einsum("bij,bkj->bik", a, a)),
]


@pytest.mark.parametrize("name, fn, ref, twin, torch_fn", CHECK_OP,
                         ids=[c[0] for c in CHECK_OP])
def test_check_op(name, fn, ref, twin, torch_fn):
    from tinygrad_llm.testing import check_op
    x = np.random.default_rng(11).standard_normal((2, 3, 4))
    check_op(fn, [x], ref=ref, twin=twin, torch_fn=torch_fn if _torch() else None)
