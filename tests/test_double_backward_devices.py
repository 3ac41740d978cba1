"""Second derivatives of the fused ops on every backend (the ``device`` fixture: cpu, and cuda
where a GPU exists): the Hessian-vector product on the device must equal the CPU's, and be
finite. The twins run on the device's arrays (CuPy masks, constants and weights)."""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import losses
from tinygrad_llm.autograd import grad
from tinygrad_llm.backend import to_numpy
from tinygrad_llm.ops.lstm import lstm_layer

RNG = np.random.default_rng(11)
KPM = np.array([[False, False, True, False], [True, True, True, True]])   # a row all hidden
TARGET = np.array([2, -100, 0])


def _split(a, *sizes):
    out, start = [], 0
    for shape in sizes:
        n = int(np.prod(shape))
        out.append(a.reshape(-1)[start:start + n].reshape(shape))
        start += n
    return out


CASES = {
    "softmax": ((2, 3, 4), lambda a: F.softmax(a, 1) + F.log_softmax(a, -1)),
    "layer_norm": ((3, 6), lambda a: F.layer_norm(a[:, :3], (3,), a[0, 3:], a[1, 3:])),
    "attention": ((3, 2, 4, 2), lambda a: F.scaled_dot_product_attention(
        a[0], a[1], a[2], key_padding_mask=tg.tensor(KPM, device=a.device))
        + F.scaled_dot_product_attention(a[0], a[1], a[2], is_causal=True)),
    "packed_attention": ((3, 1, 2, 3, 2), lambda a: F.packed_self_attention(a, is_causal=True)),
    "cross_entropy": ((3, 4), lambda a: F.cross_entropy(
        a, tg.tensor(TARGET, device=a.device), weight=tg.tensor([1.0, 2, 0.5, 1],
                                                                device=a.device),
        label_smoothing=0.1)),
    "lstm": ((94,), lambda a: lstm_layer(*_split(a, (2, 1, 2), (1, 3), (1, 3), (12, 2),
                                                 (12, 3), (12,), (12,)))[0]),
    "bce": ((2, 3), lambda a: losses.binary_cross_entropy(a.sigmoid(), (a * 0.5).sigmoid())),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_second_derivatives_on_every_device(device, name):
    shape, fn = CASES[name]
    x = RNG.standard_normal(shape)
    results = []
    for dev in ("cpu", device):
        a = tg.tensor(x, device=dev, requires_grad=True)
        y = fn(a)
        u = tg.tensor(np.linspace(-1, 1, y.data.size).reshape(y.shape), device=dev)
        g, = grad((y * u).sum(), a, create_graph=True)
        w = tg.tensor(np.cos(np.arange(a.data.size)).reshape(shape), device=dev)
        h, = grad((g * w).sum(), a)
        results.append((to_numpy(g.data), to_numpy(h.data)))
    (g_cpu, h_cpu), (g_dev, h_dev) = results
    assert np.all(np.isfinite(h_dev)) and np.any(h_dev != 0)
    np.testing.assert_allclose(g_dev, g_cpu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_dev, h_cpu, rtol=1e-10, atol=1e-12)
