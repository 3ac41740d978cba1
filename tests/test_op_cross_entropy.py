"""Cross-entropy (ops/cross_entropy.py, kernels/cross_entropy.py): every check in one file.
The kernel's own tests are in tests/test_kernels_cross_entropy.py."""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_twins, leaf
from tinygrad_llm.ops.cross_entropy import cross_entropy_composite
from tinygrad_llm.testing import check_op, gradcheck

rng = np.random.default_rng(0)

# ----- cross-entropy -------------------------------------------------------------------------

CE_CASES = [dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
            dict(ignore_index=1), dict(ignore_index=2, label_smoothing=0.1, reduction="sum")]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kwargs", CE_CASES)
def test_cross_entropy_fused_equals_twin_and_gradchecks(kwargs, weighted):
    x = rng.standard_normal((5, 4)) * 3
    t = np.array([0, 1, 2, 3, 1])
    w = rng.random(4) + 0.5 if weighted else None

    def fused(x):
        return F.cross_entropy(x, t, w, **kwargs)

    def unfused(x):
        return cross_entropy_composite(x, t, w, **kwargs)

    assert_twins(fused, unfused, x, atol=1e-12)
    assert gradcheck(fused, [leaf(x)])


@pytest.mark.oracle
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4), (2, 5, 2, 3), (5,)])
@pytest.mark.parametrize("kwargs", CE_CASES + [dict(weight=True), dict(
    weight=True, label_smoothing=0.3, ignore_index=0)])
def test_cross_entropy_matches_torch(shape, kwargs):
    torch = pytest.importorskip("torch")
    kwargs = dict(kwargs)
    c = shape[0] if len(shape) == 1 else shape[1]
    t_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    x = rng.standard_normal(shape) * 2
    t = rng.integers(0, c, size=t_shape)
    if t.ndim and "ignore_index" in kwargs:
        t.reshape(-1)[0] = kwargs["ignore_index"]  # at least one ignored row
        t.reshape(-1)[-1] = (kwargs["ignore_index"] + 1) % c  # and one kept (torch: NaN)
    elif "ignore_index" in kwargs and t == kwargs["ignore_index"]:
        t = (t + 1) % c
    if kwargs.pop("weight", False):
        kwargs["weight"] = rng.random(c) + 0.5
    ours = leaf(x)
    loss = F.cross_entropy(ours, t, **kwargs)
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    tkw = {n: (torch.tensor(v) if n == "weight" else v) for n, v in kwargs.items()}
    t_loss = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), **tkw)
    t_loss.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.data, t_loss.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_are_stable(dtype):
    x = tg.tensor(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4]], dtype=dtype),
                  requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [2e4, 0.0], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data, [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_cross_entropy_target_out_of_range_raises(bad):
    x = tg.randn(2, 3)
    with pytest.raises(IndexError, match=str(bad)):
        F.cross_entropy(x, np.array([0, bad]))
    # -1 is fine when it is the ignore_index
    F.cross_entropy(x, np.array([0, -1]), ignore_index=-1)


def test_cross_entropy_bad_arguments():
    x = tg.randn(2, 3)
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(x, np.array([True, False]))
    with pytest.raises(ValueError, match="class probabilities has shape"):
        F.cross_entropy(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="target of shape"):
        F.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, np.array([0, 1]), reduction="avg")


def test_cross_entropy_all_ignored_is_zero_not_nan():
    x = leaf(rng.standard_normal((2, 3)))
    loss = F.cross_entropy(x, np.array([-100, -100]))
    loss.backward()
    assert loss.item() == 0.0 and np.all(x.grad.data == 0)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_check_op_cross_entropy(smoothing):
    x = rng.standard_normal((6, 5))
    t = np.array([0, 4, 2, -100, 1, 4])
    torch = pytest.importorskip("torch")
    check_op(lambda x, **kw: F.cross_entropy(x, t, label_smoothing=smoothing, **kw), [x],
             twin=lambda x: cross_entropy_composite(x, t, label_smoothing=smoothing),
             impls=("ref", "cpu"),
             torch_fn=lambda x: torch.nn.functional.cross_entropy(
                 x, torch.tensor(t), label_smoothing=smoothing))
