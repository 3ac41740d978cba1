"""Every new op family on every backend (the ``device`` fixture: cpu, and cuda where a GPU
exists): forward values and gradients on the device must equal those computed on the CPU."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.backend import to_numpy

RNG = np.random.default_rng(8)
X = RNG.standard_normal((3, 4))
X0 = X.copy()
X0[1, 2] = X0[2, 0] = 0.0
IDX = np.array([[0, 2, 1, 0], [2, 2, 0, 1]])

CASES = {
    "cumsum": lambda a: a.cumsum(1),
    "cumprod_zeros": lambda a: (a * tg.tensor(X0 != 0, dtype=a.dtype, device=a.device))
    .cumprod(1),
    "cummax": lambda a: a.cummax(0).values,
    "sort": lambda a: a.sort(1, descending=True).values,
    "topk": lambda a: a.topk(2, 0).values,
    "repeat": lambda a: a.repeat(2, 1, 2),
    "repeat_interleave": lambda a: a.repeat_interleave(
        tg.tensor([1, 0, 2, 1], device=a.device), dim=1),
    "flip_roll": lambda a: a.flip(0).roll(1, 1),
    "tril_triu": lambda a: a.tril(-1) + 2 * a.triu(1),
    "unfold": lambda a: a.unfold(1, 2, 1),
    "pad_reflect": lambda a: ops.pad(a[None], (2, 1, 1, 0), mode="reflect"),
    "pad_constant": lambda a: ops.pad(a, (1, -1), value=2.0),
    "einsum": lambda a: ops.einsum("ij,kj->ik", a, a),
    "scatter_add": lambda a: a.scatter_add(0, tg.tensor(IDX[:, :3], device=a.device),
                                           a[:2, :3] * 1),
    "scatter_prod": lambda a: a.scatter_reduce(0, tg.tensor(IDX, device=a.device), a[:2] * 2,
                                               "prod"),
    "scatter_amax": lambda a: a.scatter_reduce(0, tg.tensor(IDX, device=a.device), a[:2] * 3,
                                               "amax", include_self=False),
    "scatter_mean": lambda a: a.scatter_reduce(0, tg.tensor(IDX, device=a.device), a[:2] * 3,
                                               "mean"),
    "norm_inf": lambda a: a.norm(float("inf"), 1),
    "index_select": lambda a: a.index_select(1, tg.tensor([3, 0, 3], device=a.device)),
    "masked_select": lambda a: a.masked_select(a > 0),
    "remainder_copysign": lambda a: ops.remainder(a, 0.7) + ops.copysign(a, -a.flip(0)),
    "activations": lambda a: ops.elu(a) + ops.logsigmoid(a) + ops.hardswish(a * 4)
    + ops.softplus(a, beta=2.0),
    "normalize_prod": lambda a: ops.normalize(a, dim=0) * a.prod(1, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_values_and_gradients_on_every_device(device, name):
    fn = CASES[name]
    results = []
    for dev in ("cpu", device):
        a = tg.tensor(X, device=dev, requires_grad=True)
        y = fn(a)
        y.backward(tg.tensor(np.linspace(-1, 1, y.data.size).reshape(y.shape), device=dev))
        results.append((to_numpy(y.data), to_numpy(a.grad.data)))
    (y_cpu, g_cpu), (y_dev, g_dev) = results
    np.testing.assert_allclose(y_dev, y_cpu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g_dev, g_cpu, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(g_cpu))


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_stays_float32(name):
    """Values and every gradient on the way back keep float32 (no silent float64)."""
    a = tg.tensor(X.astype(np.float32), requires_grad=True)
    b = a * 1
    b.retain_grad()
    y = CASES[name](b)
    y.backward(tg.ones(*y.shape))
    assert y.dtype == np.float32 and b.grad.dtype == np.float32


def test_no_grad_ops_on_every_device(device):
    a = tg.tensor(X0, device=device)
    np.testing.assert_array_equal(to_numpy(a.nonzero().data), np.argwhere(X0))
    np.testing.assert_array_equal(to_numpy(ops.one_hot(tg.tensor([2, 0], device=device)).data),
                                  [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(to_numpy(a.isfinite().data), np.ones(X0.shape, bool))
    np.testing.assert_array_equal(to_numpy(a.argsort(0).data), np.argsort(X0, 0, kind="stable"))
    w = tg.tensor([0.0, 1.0, 3.0], device=device)
    draws = tg.creation.multinomial(w, 2, generator=tg.Generator(0))
    assert draws.device == w.device and 0 not in to_numpy(draws.data)


ZERO_SIZE = [
    ("cumsum", lambda a: a.cumsum(0)), ("cumprod", lambda a: a.cumprod(1)),
    ("sort", lambda a: a.sort(0).values), ("topk0", lambda a: a.topk(0, 1).values),
    ("repeat", lambda a: a.repeat(2, 0)), ("flip", lambda a: a.flip(0)),
    ("roll", lambda a: a.roll(1, 1)), ("tril", lambda a: a.tril()),
    ("prod", lambda a: a.prod(0)), ("pad", lambda a: ops.pad(a, (1, 1))),
]


@pytest.mark.parametrize("name", [z[0] for z in ZERO_SIZE])
def test_zero_size_inputs_match_torch(name):
    """Zero-size dims: shapes of values and gradients, and the values, as torch."""
    torch = pytest.importorskip("torch")
    fn = dict(ZERO_SIZE)[name]
    x = np.zeros((0, 3))
    if name in ("repeat", "cumprod", "roll", "topk0", "prod"):
        x = np.zeros((2, 0))
    a, t = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = fn(a)
    y_t = fn(t) if name != "pad" else torch.nn.functional.pad(t, (1, 1))
    assert tuple(y.shape) == tuple(y_t.shape)
    np.testing.assert_array_equal(y.data, y_t.detach().numpy())
    y.sum().backward()
    y_t.sum().backward()
    assert a.grad.shape == tuple(t.grad.shape)
