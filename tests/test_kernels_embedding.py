"""The embedding-backward kernel (a scatter-add) against np.add.at, on awkward shapes.

Both add each dW element's contributions in the order of the ids, so the CPU kernel must equal
the reference exactly (float32 and float64), whatever the thread split.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import _dispatch
from tinygrad_llm.kernels.embedding import embedding_backward, embedding_backward_ref

pytestmark = pytest.mark.skipif(not _dispatch.numba_available(), reason="needs numba")


@settings(max_examples=40, deadline=None)
@given(num_rows=st.integers(1, 40), n=st.integers(0, 300),
       c=st.sampled_from([1, 3, 63, 64, 65, 130]),
       dtype=st.sampled_from([np.float32, np.float64]), pad=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_cpu_kernel_equals_add_at(num_rows, n, c, dtype, pad, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, num_rows, size=n)                 # few rows: many repeats
    dy = rng.standard_normal((n, c)).astype(dtype)
    padding_idx = int(rng.integers(0, num_rows)) if pad else None
    got = embedding_backward(ids, dy, num_rows, padding_idx=padding_idx, impl="cpu")
    ref = embedding_backward_ref(ids, dy, num_rows, padding_idx)
    assert got.dtype == dtype and got.shape == (num_rows, c)
    np.testing.assert_array_equal(got, ref)


def test_repeated_ids_add_and_padding_row_is_zero():
    ids = np.array([2, 0, 2, 2, 1])
    dy = np.arange(10, dtype=np.float64).reshape(5, 2)
    got = embedding_backward(ids, dy, 4, padding_idx=1, impl="cpu")
    np.testing.assert_array_equal(got, [[2, 3], [0, 0], [0 + 4 + 6, 1 + 5 + 7], [0, 0]])


def test_many_threads_split_columns_deterministically():
    """A large call runs on several threads (column blocks); two calls give identical bits."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 500, size=4000)
    dy = rng.standard_normal((4000, 200)).astype(np.float32)
    a = embedding_backward(ids, dy, 500, impl="cpu")
    np.testing.assert_array_equal(a, embedding_backward(ids, dy, 500, impl="cpu"))
    np.testing.assert_array_equal(a, embedding_backward_ref(ids, dy, 500))


def test_non_contiguous_inputs_and_bad_shapes():
    rng = np.random.default_rng(1)
    dy = rng.standard_normal((6, 8))[:, ::2]                # (6, 4), a strided view
    ids = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])[::2]
    np.testing.assert_array_equal(embedding_backward(ids, dy, 6, impl="cpu"),
                                  embedding_backward_ref(ids, dy, 6))
    with pytest.raises(ValueError, match="ids must be"):
        embedding_backward(ids[:3], dy, 6)
    with pytest.raises(TypeError):
        embedding_backward(ids, dy.astype(np.int64), 6)
