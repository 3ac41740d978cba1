"""Scaled dot-product attention (ops/attention.py, kernels/attention.py): every check in one
file. The kernel's own tests (tiles, masks, float32 error bounds) are in
tests/test_kernels_attention.py."""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_twins, leaf
from tinygrad_llm.ops.attention import scaled_dot_product_attention_composite
from tinygrad_llm.testing import check_op, gradcheck

rng = np.random.default_rng(0)

# ----- scaled dot-product attention ----------------------------------------------------------

def _qkv(b=2, h=2, tq=3, tk=4, d=3, dv=None):
    return (rng.standard_normal((b, h, tq, d)), rng.standard_normal((b, h, tk, d)),
            rng.standard_normal((b, h, tk, dv or d)))


def _twin_attention(mask):
    return lambda q, k, v: scaled_dot_product_attention_composite(q, k, v, mask)[0]


@pytest.mark.parametrize("tq,tk", [(3, 3), (3, 5), (5, 2), (1, 4)])
def test_sdpa_fused_equals_twin_with_masks(tq, tk):
    q, k, v = _qkv(tq=tq, tk=tk)
    float_mask = rng.standard_normal((tq, tk))
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, float_mask),
                 _twin_attention(float_mask), q, k, v, atol=1e-10)
    allowed = rng.random((2, 1, tq, tk)) < 0.7
    allowed[..., 0] = True  # no fully masked row (the twin would give NaN there)
    additive = np.where(allowed, 0.0, -np.inf)
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, allowed),
                 _twin_attention(additive), q, k, v, atol=1e-10)
    causal = np.where(np.tril(np.ones((tq, tk), bool)), 0.0, -np.inf)  # top-left, as torch
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                 _twin_attention(causal), q, k, v, atol=1e-10)


def test_sdpa_gradcheck_fused_and_composite_paths():
    q, k, v = _qkv(b=1, h=2, tq=3, tk=4, d=2)
    kpm = np.array([[False, False, True, False]])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, key_padding_mask=kpm), [leaf(q), leaf(k), leaf(v)])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     [leaf(q[:, :, :3]), leaf(k[:, :, :3]), leaf(v[:, :, :3])])
    # a float mask that needs a gradient takes the composite path, and gets its gradient
    mask = leaf(rng.standard_normal((3, 4)))
    assert gradcheck(lambda q, m: F.scaled_dot_product_attention(q, leaf(k), leaf(v), m),
                     [leaf(q), mask])
    # V with another head size also takes the composite path
    q2, k2, v2 = _qkv(b=1, h=1, tq=2, tk=3, d=2, dv=4)
    assert gradcheck(F.scaled_dot_product_attention, [leaf(q2), leaf(k2), leaf(v2)])


def test_packed_self_attention_equals_sdpa():
    qkv = rng.standard_normal((3, 2, 2, 4, 3))
    kpm = np.array([[False, False, True, False], [False] * 4])
    for kwargs in (dict(is_causal=True), dict(attn_mask=rng.standard_normal((4, 4))),
                   dict(key_padding_mask=kpm)):
        assert_twins(lambda t: F.packed_self_attention(t, **kwargs),
                     lambda t: F.scaled_dot_product_attention(t[0], t[1], t[2], **kwargs),
                     qkv, atol=1e-12)
    assert gradcheck(lambda t: F.packed_self_attention(t, is_causal=True), [leaf(qkv)])
    with pytest.raises(ValueError, match="3, B, H, T, D"):
        F.packed_self_attention(tg.zeros(2, 1, 1, 3, 2))


def test_sdpa_fully_masked_rows_give_zero_output_and_zero_grad():
    q, k, v = (leaf(a) for a in _qkv(b=2, h=1, tq=3, tk=4))
    allowed = np.ones((2, 1, 3, 4), bool)
    allowed[0, 0, 1] = False                       # query 1 of batch 0 sees nothing
    kpm = np.array([[False] * 4, [True] * 4])      # batch 1: every key is padding
    out = F.scaled_dot_product_attention(q, k, v, allowed, key_padding_mask=kpm)
    assert np.all(np.isfinite(out.data))
    assert np.all(out.data[0, 0, 1] == 0) and np.all(out.data[1] == 0)
    out.backward(np.ones(out.shape))
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad.data))
    assert np.all(q.grad.data[0, 0, 1] == 0) and np.all(q.grad.data[1] == 0)
    assert np.all(k.grad.data[1] == 0) and np.all(v.grad.data[1] == 0)


def test_sdpa_dropout_is_seeded_and_changes_output():
    q, k, v = (tg.tensor(a) for a in _qkv())
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=tg.Generator(3))
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=tg.Generator(3))
    c = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data)


def test_sdpa_errors():
    q, k, v = (tg.tensor(a) for a in _qkv())
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, np.ones((3, 4), bool), is_causal=True)
    with pytest.raises(TypeError, match="bool"):
        F.scaled_dot_product_attention(q, k, v, key_padding_mask=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="key_padding_mask"):
        F.scaled_dot_product_attention(q, k, v, key_padding_mask=np.zeros((2, 3), bool))


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["none", "bool", "float", "causal", "causal_rect", "3d"])
def test_sdpa_matches_torch(case):
    torch = pytest.importorskip("torch")
    tq, tk = (3, 5) if case == "causal_rect" else (4, 4)
    q, k, v = _qkv(b=2, h=3, tq=tq, tk=tk, d=4)
    if case == "3d":
        q, k, v = q[0], k[0], v[0]
    kwargs = {}
    if case == "bool":
        m = rng.random((tq, tk)) < 0.6
        m[:, 0] = True
        kwargs["attn_mask"] = m
    elif case == "float":
        kwargs["attn_mask"] = rng.standard_normal((2, 1, tq, tk))
    elif case.startswith("causal"):
        kwargs["is_causal"] = True
    g = rng.standard_normal(q.shape[:-1] + (v.shape[-1],))
    ours = [leaf(a) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ours, **kwargs)
    out.backward(g)
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tkw = {n: (torch.tensor(m) if n == "attn_mask" else m) for n, m in kwargs.items()}
    t_out = torch.nn.functional.scaled_dot_product_attention(*theirs, **tkw)
    t_out.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=1e-10)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("tq,tk,causal", [(3, 3, True), (1, 4, False), (5, 2, False),
                                          (4, 6, True)])
def test_check_op_attention(tq, tk, causal):
    q = rng.standard_normal((2, 2, tq, 3))
    k, v = rng.standard_normal((2, 2, tk, 3)), rng.standard_normal((2, 2, tk, 3))
    torch = pytest.importorskip("torch")
    offset = tk - tq                               # the kernel aligns causal bottom-right

    def twin(q, k, v):
        mask = None
        if causal:
            allowed = np.arange(tk)[None, :] <= np.arange(tq)[:, None] + offset
            mask = np.where(allowed, 0.0, -np.inf)
        return scaled_dot_product_attention_composite(q, k, v, mask)[0]

    def theirs(q, k, v):
        mask = None
        if causal:
            mask = torch.tensor(np.arange(tk)[None, :] <= np.arange(tq)[:, None] + offset)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if causal and tq > tk:
        return                                     # rows with no key: see the masked tests
    check_op(lambda q, k, v, **kw: F.scaled_dot_product_attention(
        q, k, v, is_causal=causal, causal_align="bottom-right", **kw), [q, k, v],
        twin=twin, impls=("ref", "cpu"), torch_fn=theirs)
