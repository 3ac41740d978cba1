"""Attention kernel vs its float64 reference; causality, masks, fully masked rows, torch SDPA.

Shape legend: q (B, H, Tq, D); k, v (B, H, Tk, D). Same tolerance rules as kernel_helpers.py:
float64 within 1e-12, float32 within 2x the naive float32 reference (+ 4 eps32 * max|ref|).
"""
import math

import numpy as np
import pytest

from kernel_helpers import assert_close64, f64
from kernel_helpers import assert_within_naive as _within_naive

import tinygrad_llm.kernels as K
from tinygrad_llm.kernels import attention as attention_kernels

RNG = np.random.default_rng(99)


def assert_within_naive(k32, naive32, ref64, factor=2.0):
    """kernel_helpers' rule with the ulp floor taken at least at the inputs' scale (1)."""
    _within_naive(k32, naive32, ref64, factor, min_scale=1.0)


def make(b, h, tq, tk, d, dtype=np.float64):
    q = RNG.standard_normal((b, h, tq, d)).astype(dtype)
    k = RNG.standard_normal((b, h, tk, d)).astype(dtype)
    v = RNG.standard_normal((b, h, tk, d)).astype(dtype)
    dout = RNG.standard_normal((b, h, tq, d)).astype(dtype)
    return q, k, v, dout


def run(q, k, v, dout, impl="auto", **opts):
    out, lse = K.attention_forward(q, k, v, impl=impl, **opts)
    return (out, lse) + K.attention_backward(q, k, v, out, lse, dout, impl=impl, **opts)


def masks_for(case, b, tq, tk, dtype=np.float64):
    opts = {}
    if "causal" in case:
        opts["causal"] = True
    if "kpm" in case:
        kpm = np.zeros((b, tk), dtype=bool)
        kpm[:, tk // 2:] = RNG.random((b, tk - tk // 2)) < 0.5
        opts["key_padding_mask"] = kpm
    if "mask" in case:
        am = RNG.standard_normal((1, 1, tq, tk)).astype(dtype)
        am[..., : max(1, tk // 3)] = -np.inf
        opts["attn_mask"] = np.broadcast_to(am, (b, 1, tq, tk))   # a zero-stride view
    return opts


CASES = [
    ((2, 3, 7, 7, 5), ""),
    ((2, 3, 7, 7, 5), "causal"),
    ((1, 2, 1, 1, 4), "causal"),                       # T = 1
    ((1, 2, 1, 13, 8), "causal"),                      # one query against a KV cache
    ((2, 1, 97, 97, 16), "causal"),
    ((1, 2, 257, 131, 8), "causal kpm mask"),          # Tq > Tk: leading rows fully masked
    ((2, 2, 130, 257, 8), "kpm mask"),
]


@pytest.mark.parametrize("shape,case", CASES, ids=[f"{s}-{c or 'plain'}" for s, c in CASES])
def test_attention_matches_reference(shape, case):
    b, h, tq, tk, d = shape
    q, k, v, dout = make(b, h, tq, tk, d)
    opts = masks_for(case, b, tq, tk)
    got = run(q, k, v, dout, **opts)
    ref = run(q, k, v, dout, impl="ref", **opts)
    for g, r in zip(got, ref):
        assert not np.isnan(g).any()
        assert_close64(g, r, tol=1e-11)
    # float32 kernel vs the naive (materialized) float32 reference
    q32, k32, v32, do32 = (a.astype(np.float32) for a in (q, k, v, dout))
    opts32 = dict(opts)
    if "attn_mask" in opts:
        opts32["attn_mask"] = opts["attn_mask"].astype(np.float32)
    got32 = run(q32, k32, v32, do32, **opts32)
    naive32 = run(q32, k32, v32, do32, impl="ref", **opts32)
    ref64 = run(f64(q32), f64(k32), f64(v32), f64(do32), impl="ref", **opts)
    for g, n, r in zip(got32, naive32, ref64):
        assert g.dtype == np.float32
        assert_within_naive(g, n, r)


def heads_last(a):
    """a (B, H, T, D) as a view of (B, T, H, D) memory: the layout of a projection split into
    heads, rows strided by H * D."""
    return np.ascontiguousarray(a.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)


def nan_buffer_like(a):
    return np.full((a.shape[0], a.shape[2], a.shape[1], a.shape[3]), np.nan,
                   a.dtype).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,case", CASES, ids=[f"{s}-{c or 'plain'}" for s, c in CASES])
def test_attention_reads_and_writes_strided_heads_in_place(shape, case, dtype, monkeypatch):
    # GPT's packed (B, T, 3, H, D) projection: q, k, v, dout and every output are strided
    # views; the CPU kernels read and write them through row strides (here at every size),
    # with the same results
    monkeypatch.setattr(attention_kernels, "_MIN_STRIDED_BYTES", 0)
    b, h, tq, tk, d = shape
    q, k, v, dout = (a.astype(dtype) for a in make(b, h, tq, tk, d))
    opts = masks_for(case, b, tq, tk, dtype)
    if tq == tk:          # one packed buffer, as PackedSelfAttention gets it
        qkv = np.ascontiguousarray(np.stack([q, k, v]).transpose(1, 3, 0, 2, 4))  # (B,T,3,H,D)
        qs, ks, vs = (qkv.transpose(2, 0, 3, 1, 4)[i] for i in range(3))
    else:
        qs, ks, vs = heads_last(q), heads_last(k), heads_last(v)
    dos = heads_last(dout)
    if h > 1 and tq > 1:
        assert not any(a.flags.c_contiguous for a in (qs, dos))
    out = nan_buffer_like(q)
    o, lse = K.attention_forward(qs, ks, vs, out=out, **opts)
    bufs = [nan_buffer_like(a) for a in (q, k, v)]
    grads = K.attention_backward(qs, ks, vs, o, lse, dos, dq=bufs[0], dk=bufs[1], dv=bufs[2],
                                 **opts)
    assert o is out and all(g is buf for g, buf in zip(grads, bufs))
    ref = run(q, k, v, dout, impl="ref", **opts)
    contiguous = run(q, k, v, dout, **opts)
    for g, c, r in zip((o, lse, *grads), contiguous, ref):
        assert not np.isnan(g).any()
        if dtype == np.float64:
            assert_close64(g, r, tol=1e-11)
        else:             # the float32 kernel on contiguous copies: within a few ulps
            np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(c).max()))


def test_attention_noncontiguous_inputs_and_out_buffers():
    q, k, v, dout = make(2, 5, 9, 11, 4)
    qt = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)   # (B,T,H,D) view
    assert not qt.flags.c_contiguous
    out = np.full((2, 9, 5, 4), np.nan).transpose(0, 2, 1, 3)
    o, lse = K.attention_forward(qt, k, v, causal=True, out=out)
    assert o is out
    ro, rlse = K.attention_forward(q, k, v, causal=True, impl="ref")
    assert_close64(out, ro)
    dq = np.full_like(q, np.nan)
    grads = K.attention_backward(qt, k, v, o, lse, dout, causal=True, dq=dq)
    assert grads[0] is dq
    for g, r in zip(grads, K.attention_backward(q, k, v, ro, rlse, dout, causal=True,
                                                impl="ref")):
        assert_close64(g, r)


@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_attention_causality(impl):
    """Changing keys/values after position t leaves out[:t+1] and dq[:t+1] unchanged."""
    q, k, v, dout = make(1, 2, 40, 40, 8)
    t = 17
    base = run(q, k, v, dout, impl=impl, causal=True)
    k2, v2 = k.copy(), v.copy()
    k2[:, :, t + 1:] = RNG.standard_normal(k2[:, :, t + 1:].shape) * 5
    v2[:, :, t + 1:] = RNG.standard_normal(v2[:, :, t + 1:].shape) * 5
    pert = run(q, k2, v2, dout, impl=impl, causal=True)
    for i in (0, 1, 2):                                # out, lse, dq
        np.testing.assert_array_equal(base[i][:, :, : t + 1], pert[i][:, :, : t + 1])
    assert not np.array_equal(base[0][:, :, t + 1:], pert[0][:, :, t + 1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fully_masked_rows_give_zeros_and_no_nan(dtype):
    q, k, v, dout = make(2, 2, 6, 6, 4, dtype)
    kpm = np.zeros((2, 6), dtype=bool)
    kpm[1] = True                                      # batch 1: every key padded
    am = np.zeros((6, 6), dtype=dtype)
    am[2] = -np.inf                                    # query 2 hidden from every key
    for impl in ("auto", "ref"):
        out, lse, dq, dk, dv = run(q, k, v, dout, impl=impl, causal=True,
                                   key_padding_mask=kpm, attn_mask=am)
        for a in (out, dq, dk, dv):
            assert not np.isnan(a).any()
        assert np.all(out[1] == 0) and np.all(out[:, :, 2] == 0)
        assert np.all(lse[1] == -np.inf) and np.all(lse[:, :, 2] == -np.inf)
        assert np.all(dq[1] == 0) and np.all(dk[1] == 0) and np.all(dv[1] == 0)
        assert np.all(dq[:, :, 2] == 0)


def test_attention_huge_scores_stay_finite():
    q, k, v, dout = make(1, 1, 5, 5, 4, np.float32)
    res = run(q * 300, k * 300, v, dout, causal=True)             # scores around 1e4..1e5
    for a in res:
        assert np.all(np.isfinite(a))


def test_attention_metamorphic():
    q, k, v, dout = make(1, 2, 6, 9, 4)
    ones = np.ones_like(v)
    np.testing.assert_allclose(K.attention_forward(q, k, ones, causal=True)[0], 1, rtol=1e-12)
    mean_v = K.attention_forward(np.zeros_like(q), k, v)[0]
    np.testing.assert_allclose(mean_v, np.broadcast_to(v.mean(2, keepdims=True), mean_v.shape),
                               rtol=1e-12)
    perm = RNG.permutation(9)
    np.testing.assert_allclose(K.attention_forward(q, k[:, :, perm], v[:, :, perm])[0],
                               K.attention_forward(q, k, v)[0], rtol=1e-12)


def test_attention_input_errors():
    q, k, v, _ = make(1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="4-D"):
        K.attention_forward(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="does not broadcast"):
        K.attention_forward(q, k, v, attn_mask=np.zeros((3, 5)))
    with pytest.raises(TypeError, match="additive float mask"):
        K.attention_forward(q, k, v, attn_mask=np.zeros((3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"key_padding_mask has shape"):
        K.attention_forward(q, k, v, key_padding_mask=np.zeros((1, 3), dtype=bool))


def test_attention_reference_backward_gradcheck():
    q, k, v, dout = make(1, 2, 3, 4, 2)
    am = RNG.standard_normal((3, 4))
    opts = dict(causal=True, attn_mask=am, scale=0.7)
    out, lse = K.attention_forward_ref(q, k, v, **opts)
    grads = K.attention_backward_ref(q, k, v, out, lse, dout, **opts)
    h = 1e-6
    for x, g in zip((q, k, v), grads):
        num = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + h
            plus = np.sum(dout * K.attention_forward_ref(q, k, v, **opts)[0])
            x[idx] = old - h
            minus = np.sum(dout * K.attention_forward_ref(q, k, v, **opts)[0])
            x[idx] = old
            num[idx] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", ["causal", "kpm mask"])
def test_attention_reference_against_torch_sdpa(case):
    torch = pytest.importorskip("torch")
    b, h, tq, tk, d = 2, 3, 5, 5, 4
    q, k, v, dout = make(b, h, tq, tk, d)
    opts = masks_for(case, b, tq, tk)
    out, lse, dq, dk, dv = run(q, k, v, dout, impl="ref", **opts)
    mask = None
    if "key_padding_mask" in opts or "attn_mask" in opts:
        add = np.zeros((b, 1, tq, tk))
        if "attn_mask" in opts:
            add = add + opts["attn_mask"]
        if "key_padding_mask" in opts:
            add = np.where(opts["key_padding_mask"][:, None, None, :], -np.inf, add)
        mask = torch.tensor(add)
    tq_, tk_, tv_ = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq_, tk_, tv_, attn_mask=mask, is_causal=opts.get("causal", False))
    tout.backward(torch.tensor(dout))
    rows_ok = np.isfinite(lse)                    # torch gives NaN on fully masked rows
    np.testing.assert_allclose(out[rows_ok], tout.detach().numpy()[rows_ok], rtol=1e-10)
    if rows_ok.all():
        for g, t in zip((dq, dk, dv), (tq_, tk_, tv_)):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)
    s = (q @ k.swapaxes(-1, -2)) / math.sqrt(d)                   # (B, H, Tq, Tk)
    if mask is not None:
        s = s + mask.numpy()
    if opts.get("causal"):
        s = np.where(np.tril(np.ones((tq, tk), dtype=bool)), s, -np.inf)
    ref_lse = torch.logsumexp(torch.tensor(s), -1).numpy()
    np.testing.assert_allclose(lse[rows_ok], ref_lse[rows_ok], rtol=1e-10)
