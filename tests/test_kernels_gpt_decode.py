"""kernels/gpt_decode.py: the fused decoding step of a GPT block against its NumPy reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import gpt_decode as G

from kernel_helpers import assert_close64, assert_within_naive

SHAPES = [  # B, C, H, S, F, t
    (1, 16, 2, 8, 64, 0),        # the first position: attention over itself only
    (1, 16, 2, 8, 64, 7),        # the last position of the cache
    (3, 15, 3, 5, 7, 2),         # odd sizes: D = 5, F = 7
    (2, 64, 4, 33, 256, 20),
    (8, 8, 1, 4, 3, 1),          # one head, FEW_ROWS rows
]


def make(B, C, H, S, F, dtype, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    shapes = [(C,), (C,), (3 * C, C), (3 * C,), (C, C), (C,), (C,), (C,), (F, C), (F,), (C, F),
              (C,)]
    w = G.BlockWeights(*[(rng.standard_normal(s) * scale).astype(dtype) for s in shapes])
    k = rng.standard_normal((B, H, S, C // H)).astype(dtype)
    v = rng.standard_normal((B, H, S, C // H)).astype(dtype)
    x = rng.standard_normal((B, C)).astype(dtype)
    return x, w, k, v


def run(x, w, k, v, t, H, gelu, impl="auto"):
    x, k, v = x.copy(), k.copy(), v.copy()
    G.gpt_block_decode(x, w, k, v, t, H, gelu=gelu, impl=impl)
    return x, k, v


def as64(w):
    return G.BlockWeights(*[a.astype(np.float64) for a in w])


@pytest.mark.parametrize("gelu", ["tanh", "none"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(shape, gelu):
    B, C, H, S, F, t = shape
    x, w, k, v = make(B, C, H, S, F, np.float64)
    got, ref = run(x, w, k, v, t, H, gelu), run(x, w, k, v, t, H, gelu, impl="ref")
    for a, b in zip(got, ref):
        assert_close64(a, b)
    # float32: no worse than twice the reference run in float32 (vs float64)
    x32, w32, k32, v32 = make(B, C, H, S, F, np.float32)
    got = run(x32, w32, k32, v32, t, H, gelu)
    naive = run(x32, w32, k32, v32, t, H, gelu, impl="ref")
    ref = run(x32.astype(np.float64), as64(w32), k32.astype(np.float64),
              v32.astype(np.float64), t, H, gelu, impl="ref")
    for a, n, r in zip(got, naive, ref):
        assert a.dtype == np.float32
        assert_within_naive(a, n, r)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 3), D=st.integers(1, 6), S=st.integers(1, 9),
       F=st.integers(1, 9), data=st.data())
def test_matches_reference_on_any_shape(B, H, D, S, F, data):
    t = data.draw(st.integers(0, S - 1))
    x, w, k, v = make(B, H * D, H, S, F, np.float64, seed=B * 100 + S)
    for a, b in zip(run(x, w, k, v, t, H, "tanh"), run(x, w, k, v, t, H, "tanh", "ref")):
        assert_close64(a, b)


def test_writes_position_t_of_the_cache_and_nothing_else():
    B, C, H, S, F, t = 2, 16, 2, 6, 32, 3
    x, w, k, v = make(B, C, H, S, F, np.float64)
    _, k2, v2 = run(x, w, k, v, t, H, "tanh")
    keep = np.arange(S) != t
    np.testing.assert_array_equal(k2[:, :, keep], k[:, :, keep])
    np.testing.assert_array_equal(v2[:, :, keep], v[:, :, keep])
    # position t holds the new key: LN_1(x) W_k^T + b_k, split into heads
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    h = (x - mu) / np.sqrt(var + 1e-5) * w.ln1_w + w.ln1_b
    key = (h @ w.attn_w[C:2 * C].T + w.attn_b[C:2 * C]).reshape(B, H, C // H)
    np.testing.assert_allclose(k2[:, :, t], key, rtol=1e-12, atol=1e-12)


def test_many_rows_and_strided_inputs_take_the_reference():
    B, C, H, S, F, t = 9, 8, 2, 4, 16, 2          # B > FEW_ROWS
    x, w, k, v = make(B, C, H, S, F, np.float64)
    for a, b in zip(run(x, w, k, v, t, H, "tanh"), run(x, w, k, v, t, H, "tanh", "ref")):
        assert_close64(a, b)
    x, w, k, v = make(2, C, H, S, F, np.float64)
    w_strided = w._replace(attn_w=np.asfortranarray(w.attn_w))
    for a, b in zip(run(x, w_strided, k, v, t, H, "tanh"), run(x, w, k, v, t, H, "tanh")):
        assert_close64(a, b)


def test_bad_inputs_are_named():
    x, w, k, v = make(1, 8, 2, 4, 16, np.float32)
    with pytest.raises(ValueError, match="fc2_w has shape"):
        G.gpt_block_decode(x, w._replace(fc2_w=w.fc2_w[:, :3]), k, v, 0, 2)
    with pytest.raises(IndexError, match="position 4 is outside"):
        G.gpt_block_decode(x, w, k, v, 4, 2)
    with pytest.raises(ValueError, match="do not split into 3 heads"):
        G.gpt_block_decode(x, w, k, v, 0, 3)
    with pytest.raises(ValueError, match="k_cache must be"):
        G.gpt_block_decode(x, w, k[:, :1], v, 0, 2)
    with pytest.raises(ValueError, match="gelu must be"):
        G.gpt_block_decode(x, w, k, v, 0, 2, gelu="relu")
    with pytest.raises(TypeError):
        G.gpt_block_decode(x.astype(np.float64), w, k, v, 0, 2)
    with pytest.raises(TypeError, match="BlockWeights"):
        G.gpt_block_decode(x, tuple(w), k, v, 0, 2)


def _decode_in_child(conn, args):
    x, w, k, v, t, H = args
    from tinygrad_llm.kernels import _dispatch
    out = run(x, w, k, v, t, H, "tanh")[0]
    conn.send((_dispatch.prange_allowed(), out))
    conn.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_child_forked_after_parallel_decoding_decodes_serially():
    """numba kills a forked child that starts a GNU OpenMP parallel region its parent had
    running; the decoding kernel then runs its serial twin instead, with the same result."""
    import multiprocessing

    from tinygrad_llm.kernels import _dispatch
    x, w, k, v = make(2, 64, 4, 33, 256, np.float32)
    expected = run(x, w, k, v, 20, 4, "tanh")[0]               # the parent's parallel kernel
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_decode_in_child, args=(child, (x, w, k, v, 20, 4)))
    proc.start()
    proc.join(120)                                   # (the answer is small: fits the pipe)
    assert proc.exitcode == 0, f"the child died (exit code {proc.exitcode})"
    allowed, out = parent.recv()
    import numba
    if numba.threading_layer() == "omp":
        assert not allowed
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert _dispatch.prange_allowed()                            # the parent is unaffected
