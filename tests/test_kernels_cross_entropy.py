"""The fused cross-entropy kernel (kernels/cross_entropy.py) against the formula written out with
Python loops, PyTorch's label smoothing and ignore_index, huge logits and bad targets."""
import math

import numpy as np
import pytest
from kernel_helpers import RNG, assert_within_naive, f64, numeric_vjp

import tinygrad_llm.kernels as K


def literal_cross_entropy(logits, targets, ignore_index, eps, reduction):
    """The float64 formula written out with Python loops (PyTorch's label smoothing)."""
    n, v = logits.shape
    losses, dlog = np.zeros(n), np.zeros((n, v))
    valid = [i for i in range(n) if targets[i] != ignore_index]
    for i in valid:
        row = [float(a) for a in logits[i]]
        m = max(row)
        lse = m + math.log(sum(math.exp(a - m) for a in row))
        logp = [a - lse for a in row]
        q = [eps / v + (1 - eps) * (j == targets[i]) for j in range(v)]
        losses[i] = -sum(qj * lp for qj, lp in zip(q, logp))
        dlog[i] = [math.exp(lp) - qj for lp, qj in zip(logp, q)]
    if reduction == "none":
        return losses, dlog
    if reduction == "sum":
        return losses.sum(), dlog
    return losses.sum() / len(valid), dlog / len(valid)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("n,v", [(1, 1), (7, 13), (33, 257)])
def test_cross_entropy_against_literal_formula(n, v, smoothing, reduction):
    logits = RNG.standard_normal((n, v)) * 3
    targets = RNG.integers(0, v, n)
    if n > 2:
        targets[[0, n // 2]] = -100
    loss, lse = K.cross_entropy_forward(logits, targets, label_smoothing=smoothing,
                                        reduction=reduction)
    want, dwant = literal_cross_entropy(logits, targets, -100, smoothing, reduction)
    np.testing.assert_allclose(loss, want, rtol=1e-12, atol=1e-12)
    dloss = np.ones(n) if reduction == "none" else 1.0
    d = K.cross_entropy_backward(logits, targets, lse, dloss, label_smoothing=smoothing,
                                 reduction=reduction)
    np.testing.assert_allclose(d, dwant, rtol=1e-11, atol=1e-13)
    # float32 kernel vs the naive float32 reference
    l32 = logits.astype(np.float32)
    k_loss, k_lse = K.cross_entropy_forward(l32, targets, label_smoothing=smoothing,
                                            reduction=reduction)
    n_loss, n_lse = K.cross_entropy_forward(l32, targets, label_smoothing=smoothing,
                                            reduction=reduction, impl="ref")
    r_loss, r_lse = K.cross_entropy_forward(f64(l32), targets, label_smoothing=smoothing,
                                            reduction=reduction, impl="ref")
    assert_within_naive(k_loss, n_loss, r_loss)
    assert_within_naive(k_lse, n_lse, r_lse)
    kw = dict(label_smoothing=smoothing, reduction=reduction)
    assert_within_naive(K.cross_entropy_backward(l32, targets, n_lse, dloss, **kw),
                        K.cross_entropy_backward(l32, targets, n_lse, dloss, impl="ref", **kw),
                        K.cross_entropy_backward(f64(l32), targets, f64(n_lse), dloss,
                                                 impl="ref", **kw))


@pytest.mark.parametrize("bad", [5, -1, -7])
def test_cross_entropy_out_of_range_targets(bad):
    logits = np.zeros((3, 5))
    with pytest.raises(IndexError, match=rf"Target {bad} is out of bounds for 5 classes"):
        K.cross_entropy_forward(logits, np.array([0, bad, 1]))
    with pytest.raises(TypeError, match="integers"):
        K.cross_entropy_forward(logits, np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_and_all_ignored(dtype):
    logits = np.array([[1e4, -1e4], [0.0, 0.0]], dtype=dtype)
    targets = np.array([1, -100])
    loss, lse = K.cross_entropy_forward(logits, targets, reduction="sum")
    np.testing.assert_allclose(loss, 2e4, rtol=1e-6)
    d = K.cross_entropy_backward(logits, targets, lse, 1.0, reduction="sum")
    np.testing.assert_allclose(d, [[1, -1], [0, 0]], atol=1e-6)
    loss, lse = K.cross_entropy_forward(logits, np.array([-100, -100]))
    assert loss == 0 and not np.isnan(lse).any()
    d = K.cross_entropy_backward(logits, np.array([-100, -100]), lse)
    assert np.all(d == 0)


def test_cross_entropy_reference_gradcheck_and_torch():
    logits = RNG.standard_normal((4, 5))
    targets = np.array([1, -100, 4, 0])
    dy = np.ones(4)

    def rows():
        return K.cross_entropy_rows_ref(logits, targets, -100, 0.2)[0]
    _, lse = K.cross_entropy_rows_ref(logits, targets, -100, 0.2)
    (num,) = numeric_vjp(rows, [logits], dy)
    np.testing.assert_allclose(K.cross_entropy_backward_ref(logits, targets, lse, dy, -100, 0.2),
                               num, rtol=1e-6, atol=1e-9)
    torch = pytest.importorskip("torch")
    tl = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tl, torch.tensor(targets), label_smoothing=0.2)
    tloss.backward()
    loss, lse = K.cross_entropy_forward(logits, targets, label_smoothing=0.2, impl="ref")
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
    d = K.cross_entropy_backward(logits, targets, lse, label_smoothing=0.2, impl="ref")
    np.testing.assert_allclose(d, tl.grad.numpy(), rtol=1e-10, atol=1e-14)
