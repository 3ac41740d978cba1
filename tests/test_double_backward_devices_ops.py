"""Second derivatives of the activations, reductions, scans and sorting ops on every backend
(the ``device`` fixture: cpu, and cuda where a GPU exists): the Hessian-vector product on the
device equals the CPU's. The recorded backward formulas (twins, exclusive products, cumprod's
zero handling with its masks) run on the device's arrays."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad
from tinygrad_llm.backend import to_numpy

X = np.random.default_rng(5).standard_normal((3, 4))
X_ZEROS = X.copy()
X_ZEROS[0, 1] = X_ZEROS[0, 3] = X_ZEROS[2, 0] = 0.0

CASES = {
    "activations": (X, lambda a: tg.gelu(a) + tg.gelu(a, approximate="tanh") + tg.silu(a)
                    + tg.softplus(a, beta=2.0) + tg.logsigmoid(a) + tg.elu(a) * tg.tanh(a)
                    + tg.sigmoid(a) * tg.hardswish(a)),
    "reductions": (X, lambda a: tg.var(a, 1) + tg.logsumexp(a, 1) + tg.norm(a, 3.0, 1)
                   + tg.amax(a, 1) ** 2 + tg.mean(a * a, 1)),
    "products": (X_ZEROS, lambda a: tg.prod(a, 1) + tg.cumprod(a, 1).sum(1)
                 + tg.prod(a, 0).sum()),
    "scans_and_sorting": (X, lambda a: (tg.cumsum(a, 0) ** 2).sum(0)
                          + (tg.sort(a, 0).values ** 3).sum(0)
                          + (tg.cummax(a, 0).values ** 2).sum(0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_second_derivatives_on_every_device(device, name):
    x, fn = CASES[name]
    results = []
    for dev in ("cpu", device):
        a = tg.tensor(x, device=dev, requires_grad=True)
        y = fn(a)
        u = tg.tensor(np.linspace(-1, 1, y.data.size).reshape(y.shape), device=dev)
        (g,) = grad((y * u).sum(), a, create_graph=True)
        w = tg.tensor(np.cos(np.arange(a.data.size)).reshape(x.shape), device=dev)
        (h,) = grad((g * w).sum(), a)
        results.append((to_numpy(g.data), to_numpy(h.data)))
    (g_cpu, h_cpu), (g_dev, h_dev) = results
    assert np.all(np.isfinite(h_dev)) and np.any(h_dev != 0)
    np.testing.assert_allclose(g_dev, g_cpu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_dev, h_cpu, rtol=1e-10, atol=1e-12)
