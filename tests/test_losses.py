"""Losses: float64 gradchecks, parity with torch.nn.functional (value and gradient, every
reduction), numerics at extreme logits and probabilities, and the errors for bad input."""
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import losses as L
from tinygrad_llm import nn
from tinygrad_llm.nn import Linear
from tinygrad_llm.testing import gradcheck
from tinygrad_llm.testing import strategies as tst

REDUCTIONS = ["mean", "sum", "none"]


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))  # same seed every run


# ----- float64 gradient checks ----------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_regression_and_binary(reduction):
    rng = rng_for("bin", reduction)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    p, t = rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))
    w, pw = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 3, 4)
    assert gradcheck(lambda a, b: L.mse_loss(a, b, reduction), [leaf(x), leaf(y)])
    assert gradcheck(lambda a, b: L.binary_cross_entropy(a, b, tg.tensor(w), reduction),
                     [leaf(p), leaf(t)])
    assert gradcheck(lambda a, b: L.binary_cross_entropy_with_logits(
        a, b, tg.tensor(w), reduction, pos_weight=tg.tensor(pw)), [leaf(3 * x), leaf(t)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_multiclass_and_embedding_losses(reduction):
    rng = rng_for("multi", reduction)
    x = rng.standard_normal((3, 5))
    soft = rng.dirichlet(np.ones(5), size=3)
    w = rng.uniform(0.5, 2, 5)
    assert gradcheck(lambda a, b: L.cross_entropy(a, b, tg.tensor(w), reduction=reduction,
                                                  label_smoothing=0.1), [leaf(x), leaf(soft)])
    target = np.array([0, 4, 2])
    assert gradcheck(lambda a: L.nll_loss(a, target, tg.tensor(w), reduction=reduction),
                     [leaf(x)])
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y = np.array([1, -1, 1, -1])
    assert gradcheck(lambda a, b: L.cosine_embedding_loss(a, b, y, margin=-0.5,
                                                          reduction=reduction),
                     [leaf(x1), leaf(x2)])
    v, u, neg = (rng.standard_normal(s) for s in ((3, 4), (3, 4), (3, 2, 4)))
    assert gradcheck(lambda a, b, c: L.negative_sampling_loss(a, b, c, reduction),
                     [leaf(v), leaf(u), leaf(neg)])


@given(tst.shapes(min_dims=1, max_dims=3), st.integers(0, 2 ** 31 - 1))
def test_gradcheck_penalties_and_mse_property(shape, seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 2, shape) * rng.choice([-1, 1], shape)    # away from |w|'s kink at 0
    y = rng.standard_normal(shape)
    assert gradcheck(lambda a, b: L.l1_penalty([a, b]) + L.l2_penalty([("a", a), ("b", b)])
                     + L.mse_loss(a, b), [leaf(w), leaf(y)])


# ----- parity with torch ----------------------------------------------------------------------

def _pair(torch, a):
    return leaf(a), torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _check_parity(torch, ours_fn, torch_fn, arrays, grad_of=None):
    ours, theirs = zip(*[_pair(torch, a) for a in arrays])
    out, ref = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-5, atol=1e-10)
    g = np.random.default_rng(0).standard_normal(ref.shape)
    (out * tg.tensor(g)).sum().backward()
    (ref * torch.from_numpy(g)).sum().backward()
    for k in (range(len(arrays)) if grad_of is None else grad_of):
        np.testing.assert_allclose(ours[k].grad.data, theirs[k].grad.numpy(), rtol=1e-5,
                                   atol=1e-10, err_msg=f"gradient of argument {k}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_torch(reduction):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = rng_for("torch", reduction)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    p, t = rng.uniform(0.01, 0.99, (4, 5)), rng.uniform(0, 1, (4, 5))
    w, pw = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 3, 5)
    wt, pwt = torch.from_numpy(w), torch.from_numpy(pw)
    r = reduction
    _check_parity(torch, lambda a, b: L.mse_loss(a, b, r),
                  lambda a, b: TF.mse_loss(a, b, reduction=r), [x, y])
    _check_parity(torch, lambda a, b: L.binary_cross_entropy(a, b, tg.tensor(w), r),
                  lambda a, b: TF.binary_cross_entropy(a, b, wt, reduction=r), [p, t])
    _check_parity(torch, lambda a, b: L.binary_cross_entropy_with_logits(
        a, b, tg.tensor(w), r, pos_weight=tg.tensor(pw)),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, wt, reduction=r, pos_weight=pwt),
        [3 * x, t])
    soft = rng.dirichlet(np.ones(5), size=4)
    _check_parity(torch, lambda a, b: L.cross_entropy(a, b, tg.tensor(w), reduction=r,
                                                      label_smoothing=0.2),
                  lambda a, b: TF.cross_entropy(a, b, wt, reduction=r, label_smoothing=0.2),
                  [x, soft])
    x3 = rng.standard_normal((3, 5, 2))                          # (N, C, d1)
    soft3 = np.moveaxis(rng.dirichlet(np.ones(5), size=(3, 2)), -1, 1)
    _check_parity(torch, lambda a, b: L.cross_entropy(a, b, reduction=r),
                  lambda a, b: TF.cross_entropy(a, b, reduction=r), [x3, soft3])
    target = np.array([0, 4, -100, 2])
    logp = np.log(rng.dirichlet(np.ones(5), size=4))
    _check_parity(torch, lambda a: L.nll_loss(a, target, tg.tensor(w), reduction=r),
                  lambda a: TF.nll_loss(a, torch.from_numpy(target), wt, reduction=r), [logp])
    _check_parity(torch, lambda a: nn.CrossEntropyLoss(w, reduction=r)(a, tg.tensor(target)),
                  lambda a: TF.cross_entropy(a, torch.from_numpy(target), wt, reduction=r), [x])
    x1, x2 = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    pm = np.array([1, -1, 1, -1])
    _check_parity(torch, lambda a, b: L.cosine_embedding_loss(a, b, pm, margin=-0.3,
                                                              reduction=r),
                  lambda a, b: TF.cosine_embedding_loss(a, b, torch.from_numpy(pm), margin=-0.3,
                                                        reduction=r), [x1, x2])


def test_negative_sampling_and_unbatched_match_torch():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(3)
    v, u, neg = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(
        (3, 5, 4))

    def sgns_torch(v, u, neg):
        pos = TF.logsigmoid((u * v).sum(-1))
        negs = TF.logsigmoid(-(neg * v[:, None]).sum(-1)).sum(-1)
        return -(pos + negs).mean()

    _check_parity(torch, L.negative_sampling_loss, sgns_torch, [v, u, neg])
    x = rng.standard_normal(5)                                     # (C,) with a 0-d target
    _check_parity(torch, lambda a: L.nll_loss(a, np.array(3)),
                  lambda a: TF.nll_loss(a, torch.tensor(3)), [x])
    _check_parity(torch, lambda a, b: L.cosine_embedding_loss(a, b, np.array(-1)),
                  lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(-1)),
                  [x, rng.standard_normal(5)])


def test_module_classes_match_functional():
    rng = np.random.default_rng(4)
    x, y = tg.tensor(rng.standard_normal((3, 4))), tg.tensor(rng.uniform(0, 1, (3, 4)))
    p = x.sigmoid()
    pairs = [(nn.MSELoss(reduction="sum")(x, y), L.mse_loss(x, y, "sum")),
             (nn.BCELoss()(p, y), L.binary_cross_entropy(p, y)),
             (nn.BCEWithLogitsLoss(pos_weight=np.full(4, 2.0))(x, y),
              L.binary_cross_entropy_with_logits(x, y, pos_weight=np.full(4, 2.0))),
             (nn.NLLLoss(ignore_index=1)(x, np.array([0, 1, 3])),
              L.nll_loss(x, np.array([0, 1, 3]), ignore_index=1)),
             (nn.CosineEmbeddingLoss(margin=0.1)(x, y, np.array([1, -1, 1])),
              L.cosine_embedding_loss(x, y, np.array([1, -1, 1]), margin=0.1))]
    for a, b in pairs:
        np.testing.assert_allclose(a.data, b.data)


def test_loss_modules_live_in_nn():
    """torch.nn's place (nn.CrossEntropyLoss); their buffers are registered like any
    Module's (so state_dict carries class weights)."""
    for name in ("MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss",
                 "CosineEmbeddingLoss", "NegativeSamplingLoss"):
        assert issubclass(getattr(nn, name), nn.Module), name
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])
    assert list(loss.state_dict()) == ["weight"] and isinstance(loss, nn.Module)


def test_cross_entropy_dispatch():
    """Class indices go to the fused F.cross_entropy; one-hot probabilities give the same."""
    rng = np.random.default_rng(5)
    x = tg.tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    target = np.array([2, 0, 1, 1])
    fused = F.cross_entropy(x, tg.tensor(target), label_smoothing=0.1)
    np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.1)(x, tg.tensor(target)).data,
                               fused.data)
    one_hot = np.eye(3)[target]
    np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.1)(x, one_hot).data,
                               fused.data, rtol=1e-12)


def test_penalties():
    model = Linear(3, 2, dtype=np.float64, generator=tg.Generator(0))
    w, b = model.weight.data, model.bias.data
    np.testing.assert_allclose(L.l1_penalty(model).data, np.abs(w).sum() + np.abs(b).sum())
    np.testing.assert_allclose(L.l2_penalty(model.named_parameters()).data,
                               (w * w).sum() + (b * b).sum())
    L.l2_penalty(model.parameters()).backward()
    np.testing.assert_allclose(model.weight.grad.data, 2 * w)


# ----- numerics -------------------------------------------------------------------------------

def test_bce_with_logits_extreme_logits():
    x = leaf([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    loss = L.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.data, [0, 0, 1000, 1000, np.log(2)], atol=1e-12)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [0, 0, 1, -1, 0], atol=1e-12)
    x32 = tg.tensor(np.array([1e4, -1e4], np.float32), requires_grad=True)
    L.binary_cross_entropy_with_logits(x32, np.array([0.0, 1.0])).backward()
    assert np.all(np.isfinite(x32.grad.data))


def test_bce_on_probabilities_at_0_and_1():
    """log is clamped at -100 (PyTorch); the input gradient stays finite at p = 0 and 1. The
    target gradient is that of the clamped loss (PyTorch's is +-inf there)."""
    p, y = leaf([0.0, 1.0, 0.0, 1.0]), leaf([1.0, 0.0, 0.0, 1.0])
    loss = L.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_allclose(loss.data, [100, 100, 0, 0])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.data)) and np.all(np.isfinite(y.grad.data))
    np.testing.assert_allclose(p.grad.data, [-1e12, 1e12, 0, 0])


def test_nll_all_ignored_is_nan_like_torch():
    out = L.nll_loss(tg.tensor(np.zeros((2, 3))), np.array([-100, -100]))
    assert np.isnan(out.item())


# ----- bad input ------------------------------------------------------------------------------

def test_errors_name_the_shapes_and_values():
    a, b = tg.zeros(3, 4), tg.zeros(4, 3)
    for fn in (L.mse_loss, L.binary_cross_entropy, L.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
            fn(a, b)
    with pytest.raises(ValueError, match=r"target.*between 0 and 1.*1\.5"):
        L.binary_cross_entropy(tg.full((2,), 0.5), tg.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match=r"input.*between 0 and 1"):
        L.binary_cross_entropy(tg.tensor([-0.1, 0.5]), tg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="1 or -1"):
        L.cosine_embedding_loss(a, a, np.array([1, 0, 1]))
    with pytest.raises(ValueError, match=r"input1 of shape \(3, 4\).*input2 of shape \(4, 3\)"):
        L.cosine_embedding_loss(a, b, np.ones(3))
    with pytest.raises(IndexError, match="target 7"):
        L.nll_loss(a, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"target of shape \(2,\)"):
        L.nll_loss(a, np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        L.mse_loss(a, a, reduction="avg")
    with pytest.raises(ValueError, match=r"center \(N, D\)"):
        L.negative_sampling_loss(a, a, tg.zeros(3, 4))
