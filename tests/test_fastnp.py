"""kernels/fastnp.py: NumPy's functions with large results in pooled memory give NumPy's results,
and the backward built on them touches no fresh pages once a training step is warm."""
import resource

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.kernels import _buffer_pool as pool
from tinygrad_llm.kernels import fastnp

ROWS = pool.MIN_BYTES // (4 * 64) + 3           # (ROWS, 64) float32 is just over the pool's size


pytestmark = pytest.mark.usefixtures("fresh_pool")      # conftest.py


def _pooled(a):
    base = a
    while base.base is not None and not pool.is_pool_buffer(base):
        base = base.base
    return pool.is_pool_buffer(base)


shapes = st.sampled_from([((ROWS, 64), (ROWS, 64)), ((ROWS, 64), (64,)), ((64,), (ROWS, 64)),
                          ((ROWS, 1), (1, 64)), ((3, 5), (3, 5)), ((ROWS, 64), (ROWS, 1))])
dtypes = st.sampled_from([np.float32, np.float64, np.int64])


@settings(max_examples=40, deadline=None)
@given(shapes, dtypes, dtypes)
def test_add_matches_numpy(shape_pair, da, db):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(shape_pair[0]) * 10).astype(da)
    b = (rng.standard_normal(shape_pair[1]) * 10).astype(db)
    got, want = fastnp.add(a, b), np.add(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    big = max(a.nbytes, b.nbytes) >= pool.MIN_BYTES and da == db
    assert _pooled(got) == big


@pytest.mark.parametrize("number", [2.5, 3, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_array_and_a_python_number_keep_the_array_dtype(number, dtype):
    a = np.linspace(-1, 1, ROWS * 64).astype(dtype).reshape(ROWS, 64)
    for x, y in ((a, number), (number, a)):
        got, want = fastnp.add(x, y), np.add(x, y)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
        assert _pooled(got)


def test_add_of_tensors_and_other_operands_is_their_own_sum():
    a, b = tg.ones(ROWS, 64, requires_grad=True), tg.ones(ROWS, 64)
    s = fastnp.add(a, b)                              # a Tensor: the sum is recorded
    assert isinstance(s, tg.Tensor) and s.requires_grad
    np.testing.assert_array_equal(s.data, 2)
    assert fastnp.add(2, 3) == 5


def test_pooled_results_never_share_memory_while_alive():
    a = np.ones((ROWS, 64), np.float32)
    results = [fastnp.add(a, float(i)) for i in range(5)]
    for i, r in enumerate(results):
        assert (r == 1 + i).all()
    for i in range(5):
        for j in range(i):
            assert not np.shares_memory(results[i], results[j])


@pytest.mark.parametrize("perm,shape", [((1, 0, 2), (ROWS * 8, 8)),        # needs a copy
                                        ((0, 2, 1), (ROWS, 64)),            # needs a copy
                                        ((0, 1, 2), (ROWS * 64,))])         # a view
def test_reshape_copies_only_when_numpy_would(perm, shape):
    x = np.arange(ROWS * 64, dtype=np.float32).reshape(ROWS, 8, 8).transpose(perm)
    got, want = fastnp.reshape(x, shape), np.reshape(x, shape)
    np.testing.assert_array_equal(got, want)
    assert np.shares_memory(got, x) == np.shares_memory(want, x)


def test_reshape_to_an_invalid_shape_raises_as_numpy():
    x = np.zeros((ROWS, 8, 8), np.float32).transpose(1, 0, 2)
    with pytest.raises(ValueError):
        fastnp.reshape(x, (7, 5))


@pytest.mark.parametrize("ids", [[0, 3, 3, -1, -5], [4, 0]])
def test_take_into_out_matches_numpy(ids):
    w = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    ids = np.array(ids)
    out = np.empty((len(ids), 3), np.float32)
    assert fastnp.take(w, ids, axis=0, out=out) is out
    np.testing.assert_array_equal(out, np.take(w, ids, axis=0))


@pytest.mark.parametrize("bad", [5, -6])
def test_take_into_out_checks_indices_as_numpy(bad):
    w = np.zeros((5, 3), np.float32)
    out = np.empty((2, 3), np.float32)
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds"):
        fastnp.take(w, np.array([0, bad]), axis=0, out=out)
    with pytest.raises(IndexError):
        np.take(w, np.array([0, bad]), axis=0, out=out)


def test_a_warm_training_step_backward_maps_no_fresh_pages():
    # a GPT step whose head reshapes and gradient sums are 512 KiB arrays: once the pool
    # holds them, the backward writes no page it has not written before
    from tinygrad_llm.models import GPT, GPTConfig
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=128,
                          dropout=0.0))
    opt = tg.optim.AdamW(model.parameters(), lr=1e-3)
    ids = np.random.default_rng(0).integers(0, 64, (16, 65))
    x, y = tg.tensor(ids[:, :-1]), tg.tensor(ids[:, 1:])

    def step():
        opt.zero_grad()
        _, loss = model(x, y)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        loss.backward()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        opt.step()
        return after - before

    for _ in range(3):
        step()
    faults = [step() for _ in range(3)]
    # one 512 KiB array is 128 pages; a few stray pages (interpreter, numba) are allowed
    assert min(faults) < 64, faults


@pytest.mark.parametrize("make", [
    lambda: np.zeros((2, 9, 3, 5)).transpose(0, 2, 1, 3),                 # heads of a projection
    lambda: np.zeros((2, 7, 3, 4, 5), np.float32).transpose(2, 0, 3, 1, 4),  # packed qkv
    lambda: np.zeros((ROWS, 64), np.float32).T,                            # large: pooled
    lambda: np.zeros((4, 6))[:, ::2],                                      # sliced
])
def test_empty_like_order_k_follows_the_memory_order(make):
    a = make()
    got = fastnp.empty_like(a, order="K")
    assert got.shape == a.shape and got.dtype == a.dtype
    assert np.argsort(got.strides).tolist() == np.argsort(a.strides).tolist()
    outer_first = np.argsort(got.strides, kind="stable")[::-1]
    assert got.transpose(outer_first).flags.c_contiguous               # dense, no gaps
    assert fastnp.empty_like(a).flags.c_contiguous                     # the default: C
    assert _pooled(got) == (a.nbytes >= pool.MIN_BYTES)


def test_empty_like_order_k_of_broadcast_or_reversed_views_is_c_contiguous():
    for a in (np.broadcast_to(np.zeros((1, 5)), (4, 5)), np.zeros((4, 5))[::-1]):
        assert fastnp.empty_like(a, order="K").flags.c_contiguous
    with pytest.raises(ValueError, match="order"):
        fastnp.empty_like(np.zeros((2, 2)), order="F")
