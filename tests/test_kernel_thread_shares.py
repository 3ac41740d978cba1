"""The row and elementwise kernels split over the pool give what one thread gives.

Real calls split only above _dispatch.MIN_VALUES_PER_THREAD values per thread (and attention
above its multiply-add threshold), sizes the other kernel tests rarely reach; here the
thresholds are lowered so that awkward small shapes are cut into uneven shares on three
threads, and each result is compared with the kernel run on one thread.
"""
import numpy as np
import pytest

from tinygrad_llm.kernels import _dispatch as D
from tinygrad_llm.kernels import attention, cross_entropy, gelu, layer_norm, softmax

SHAPES = [(7, 5), (33, 130), (3, 2, 257)]


def _run(fn, threads, monkeypatch):
    """fn() on `threads` threads; asserts that a call was really cut into several shares."""
    shares = []
    real = D.parallel_items

    def counting(kernel, n_items, *args, **kwargs):
        shares.append(min(n_items, threads))
        return real(kernel, n_items, *args, **kwargs)
    with monkeypatch.context() as mp:
        mp.setattr(D, "num_threads", lambda: threads)
        mp.setattr(D, "parallel_items", counting)
        mp.setattr(D, "MIN_VALUES_PER_THREAD", 1)
        mp.setattr(attention, "_MIN_WORK_PER_THREAD", 1)
        result = fn()
    assert shares and (threads == 1 or max(shares) > 1), shares
    return result


def _same_split_and_serial(fn, monkeypatch, exact=True):
    one = _run(fn, 1, monkeypatch)
    three = _run(fn, 3, monkeypatch)
    one = one if isinstance(one, tuple) else (one,)
    three = three if isinstance(three, tuple) else (three,)
    for a, b in zip(one, three):
        if a is None:
            assert b is None
        elif exact:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        else:          # per-chunk partial sums, added in another order
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_shares(monkeypatch, shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y = softmax.softmax_forward(x)
    ly = softmax.log_softmax_forward(x)
    _same_split_and_serial(lambda: softmax.softmax_forward(x), monkeypatch)
    _same_split_and_serial(lambda: softmax.log_softmax_forward(x), monkeypatch)
    _same_split_and_serial(lambda: softmax.softmax_backward(y, dy), monkeypatch)
    _same_split_and_serial(lambda: softmax.log_softmax_backward(ly, dy), monkeypatch)


@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_shares(monkeypatch, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    _same_split_and_serial(lambda: layer_norm.layer_norm_forward(x, w, b), monkeypatch)
    _, mean, rstd = layer_norm.layer_norm_forward(x, w, b)
    # dweight and dbias are sums of one partial per share: equal up to the order of addition
    _same_split_and_serial(lambda: layer_norm.layer_norm_backward(dy, x, w, mean, rstd),
                           monkeypatch, exact=False)


@pytest.mark.parametrize("n, v", [(7, 5), (33, 130)])
def test_cross_entropy_shares(monkeypatch, n, v):
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal((n, v)) * 3).astype(np.float32)
    t = rng.integers(0, v, n)
    t[::4] = -100
    _same_split_and_serial(
        lambda: cross_entropy.cross_entropy_forward(logits, t, reduction="none"), monkeypatch)
    _, lse = cross_entropy.cross_entropy_forward(logits, t, reduction="none")
    dloss = rng.standard_normal(n).astype(np.float32)
    _same_split_and_serial(
        lambda: cross_entropy.cross_entropy_backward(logits, t, lse, dloss, reduction="none"),
        monkeypatch)


def test_gelu_shares(monkeypatch):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(3 * gelu._BLOCK + 17) * 3).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    _same_split_and_serial(lambda: gelu.gelu_tanh_forward(x), monkeypatch)
    _same_split_and_serial(lambda: gelu.gelu_tanh_backward(x, dy), monkeypatch)


@pytest.mark.parametrize("b, h, tq, tk", [(1, 3, 5, 5), (2, 2, 130, 130), (1, 5, 3, 200)])
def test_attention_shares(monkeypatch, b, h, tq, tk):
    rng = np.random.default_rng(4)
    q = rng.standard_normal((b, h, tq, 16)).astype(np.float32)
    k, v = (rng.standard_normal((b, h, tk, 16)).astype(np.float32) for _ in range(2))
    causal = tq == tk
    _same_split_and_serial(lambda: attention.attention_forward(q, k, v, causal=causal),
                           monkeypatch)
    out, lse = attention.attention_forward(q, k, v, causal=causal)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    _same_split_and_serial(
        lambda: attention.attention_backward(q, k, v, out, lse, dout, causal=causal),
        monkeypatch)
