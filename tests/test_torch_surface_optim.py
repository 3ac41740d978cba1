"""RMSprop and Adagrad step by step against torch.optim (float64), their state_dicts, errors
and first steps by hand; nn.utils (clipping, parameters_to_vector) against torch.nn.utils."""
import math

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import optim
from tinygrad_llm.nn import utils as nn_utils
from tinygrad_llm.serialization import load, save

SHAPES = [(3, 2), (4,), ()]

CONFIGS = [
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.005, "centered": True}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.5, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-3, "maximize": True}),
]


def _initial():
    rng = np.random.default_rng(1)
    return [rng.standard_normal(s) for s in SHAPES]


def _loss(ps, lib):
    """A non-quadratic loss of the parameters (gradients change from step to step)."""
    a, b, c = ps
    return (a * a * a).sum() + ((a.sum(0) * b[:2]).sum() - 1) ** 2 + (b * b).sum() * c + c * c


def _run(opt, ps, lib, steps):
    """Parameter values after each step."""
    history = []
    for _ in range(steps):
        opt.zero_grad()
        _loss(ps, lib).backward()
        opt.step()
        history.append([p.detach().numpy().copy() for p in ps])
    return history


def _entry(state, param, index):
    """A parameter's optimizer state, keyed by name ("0", "1", ...), index or the parameter
    itself (the keying may change; the values may not)."""
    for key in (str(index), index, param):
        if key in state:
            return state[key]
    raise KeyError(f"no optimizer state for parameter {index}")


def _tl_params():
    return [tl.tensor(a, dtype=np.float64, requires_grad=True) for a in _initial()]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=lambda v: str(v))
def test_steps_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ps = _tl_params()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in _initial()]
    mine = _run(getattr(optim, name)(ps, **kwargs), ps, tl, 8)
    ref_opt = getattr(torch.optim, name)(ts, **kwargs)
    ref = _run(ref_opt, ts, torch, 8)
    for step, (got, want) in enumerate(zip(mine, ref)):
        for k, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} {kwargs} step {step + 1} param {k}")


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=lambda v: str(v))
def test_state_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ps = _tl_params()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in _initial()]
    opt = getattr(optim, name)(ps, **kwargs)
    ref_opt = getattr(torch.optim, name)(ts, **kwargs)
    _run(opt, ps, tl, 3)
    _run(ref_opt, ts, torch, 3)
    mine, ref = opt.state_dict()["state"], ref_opt.state_dict()["state"]
    assert len(mine) == len(ref) == 3
    for k in range(3):
        want = ref[k]
        got = _entry(mine, ps[k], k)
        assert set(got) == set(want), (got.keys(), want.keys())
        assert int(got["step"]) == int(want["step"]) == 3
        for key in want:
            if key != "step":
                np.testing.assert_allclose(got[key], want[key].numpy(), rtol=1e-10,
                                           atol=1e-14, err_msg=f"{name} state {k}.{key}")


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    ps = _tl_params()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in _initial()]
    for name in ("RMSprop", "Adagrad"):
        mine = _run(getattr(optim, name)([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}],
                                         lr=0.02), ps, tl, 4)
        ref = _run(getattr(torch.optim, name)([{"params": ts[:2]},
                                               {"params": ts[2:], "lr": 0.1}], lr=0.02),
                   ts, torch, 4)
        for got, want in zip(mine[-1], ref[-1]):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _grad_once(p, g):
    p.grad = tl.tensor(g, dtype=np.float64)


def test_rmsprop_first_steps_by_hand():
    """Without torch: the first two steps of the written-out formulas."""
    p0, g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, -1.0, 2.0]), np.array([1, 1, 1.0])
    lr, alpha, eps, mom = 0.1, 0.9, 1e-8, 0.5
    p = tl.tensor(p0, dtype=np.float64, requires_grad=True)
    opt = optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps, momentum=mom)
    _grad_once(p, g1)
    opt.step()
    v1 = (1 - alpha) * g1 ** 2
    b1 = g1 / (np.sqrt(v1) + eps)
    np.testing.assert_allclose(p.detach().numpy(), p0 - lr * b1, rtol=1e-12)
    _grad_once(p, g2)
    opt.step()
    v2 = alpha * v1 + (1 - alpha) * g2 ** 2
    b2 = mom * b1 + g2 / (np.sqrt(v2) + eps)
    np.testing.assert_allclose(p.detach().numpy(), p0 - lr * b1 - lr * b2, rtol=1e-12)


def test_adagrad_first_steps_by_hand():
    p0, g1, g2 = np.array([1.0, -2.0]), np.array([0.3, -1.0]), np.array([-2.0, 0.5])
    lr, decay, init, eps = 0.5, 0.1, 0.2, 1e-10
    p = tl.tensor(p0, dtype=np.float64, requires_grad=True)
    opt = optim.Adagrad([p], lr=lr, lr_decay=decay, initial_accumulator_value=init, eps=eps)
    assert _entry(opt.state_dict()["state"], p, 0)["step"] == 0   # state exists before a step
    _grad_once(p, g1)
    opt.step()
    s1 = init + g1 ** 2
    p1 = p0 - lr * g1 / (np.sqrt(s1) + eps)
    np.testing.assert_allclose(p.detach().numpy(), p1, rtol=1e-12)
    _grad_once(p, g2)
    opt.step()
    s2 = s1 + g2 ** 2
    p2 = p1 - lr / (1 + decay) * g2 / (np.sqrt(s2) + eps)
    np.testing.assert_allclose(p.detach().numpy(), p2, rtol=1e-12)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad"])
def test_state_dict_round_trip_continues_identically(name, tmp_path):
    kwargs = {"momentum": 0.9, "centered": True} if name == "RMSprop" else {"lr_decay": 0.01}
    ps = _tl_params()
    opt = getattr(optim, name)(ps, lr=0.01, **kwargs)
    _run(opt, ps, tl, 3)
    save({"opt": opt.state_dict(), "params": ps}, tmp_path / "ckpt")
    straight = _run(opt, ps, tl, 3)[-1]
    saved = load(tmp_path / "ckpt")
    ps2 = [p.detach().requires_grad_() for p in saved["params"]]
    opt2 = getattr(optim, name)(ps2, lr=0.5)
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01
    resumed = _run(opt2, ps2, tl, 3)[-1]
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


BAD = [("RMSprop", {"lr": -1.0}), ("RMSprop", {"eps": -1e-3}), ("RMSprop", {"alpha": -0.1}),
       ("RMSprop", {"momentum": -0.5}), ("RMSprop", {"weight_decay": -1.0}),
       ("Adagrad", {"lr": -1.0}), ("Adagrad", {"lr_decay": -0.1}),
       ("Adagrad", {"weight_decay": -1.0}), ("Adagrad", {"initial_accumulator_value": -1.0}),
       ("Adagrad", {"eps": -1.0})]


@pytest.mark.parametrize("name, kwargs", BAD, ids=lambda v: str(v))
def test_invalid_hyperparameters_raise_value_error(name, kwargs):
    key, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=str(value)):
        getattr(optim, name)(_tl_params(), **kwargs)


@pytest.mark.parametrize("name, kwargs", BAD, ids=lambda v: str(v))
def test_invalid_hyperparameters_torch_agrees(name, kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad"])
def test_parameters_without_gradient_are_left_alone(name):
    a, b = _tl_params()[:2]
    opt = getattr(optim, name)([a, b])
    before = b.detach().numpy().copy()
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), before)
    assert not np.allclose(a.detach().numpy(), _initial()[0])


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad"])
def test_float32_parameters_stay_float32(name):
    p = tl.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = getattr(optim, name)([p])
    (p * p).sum().backward()
    opt.step()
    assert p.dtype == np.float32
    state = _entry(opt.state, p, 0)
    assert all(v.dtype == np.float32 for v in state.values() if hasattr(v, "dtype"))


# ----- nn.utils ------------------------------------------------------------------------------

def _with_grads(lib, grads):
    ps = []
    for g in grads:
        p = lib.zeros(*g.shape, dtype=lib.float64, requires_grad=True)
        p.grad = lib.tensor(g, dtype=lib.float64)
        ps.append(p)
    return ps


GRADS = [np.array([[3.0, -4.0], [1.0, 2.0]]), np.array([0.5, -12.0, 2.0])]


@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (100.0, 2.0), (2.0, 1.0),
                                                  (3.0, math.inf), (0.5, 3.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    torch = pytest.importorskip("torch")
    mine, ref = _with_grads(tl, GRADS), _with_grads(torch, GRADS)
    total = nn_utils.clip_grad_norm_(mine, max_norm, norm_type=norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    assert isinstance(total, tl.Tensor) and total.ndim == 0
    np.testing.assert_allclose(total.item(), ref_total.item(), rtol=1e-12)
    for p, q in zip(mine, ref):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_by_hand():
    ps = _with_grads(tl, GRADS)
    total = nn_utils.clip_grad_norm_(iter(ps), 1.0)            # a generator, as parameters()
    norm = math.sqrt(sum((g ** 2).sum() for g in GRADS))
    assert total.item() == pytest.approx(norm)
    np.testing.assert_allclose(ps[1].grad.numpy(), GRADS[1] / (norm + 1e-6), rtol=1e-12)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    mine, ref = _with_grads(tl, GRADS), _with_grads(torch, GRADS)
    assert nn_utils.clip_grad_value_(mine, 2.5) is None
    torch.nn.utils.clip_grad_value_(ref, 2.5)
    for p, q in zip(mine, ref):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())


def test_clip_grad_value_by_hand():
    ps = _with_grads(tl, GRADS)
    nn_utils.clip_grad_value_(ps, 1.5)
    np.testing.assert_array_equal(ps[0].grad.numpy(), np.clip(GRADS[0], -1.5, 1.5))


def test_parameters_to_vector_and_back():
    ps = _tl_params()
    vec = nn_utils.parameters_to_vector(ps)
    np.testing.assert_array_equal(vec.detach().numpy(),
                                  np.concatenate([a.reshape(-1) for a in _initial()]))
    (vec * tl.arange(vec.shape[0], dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(ps[1].grad.numpy(), np.arange(6, 10))  # the 2nd block
    nn_utils.vector_to_parameters(vec.detach() * 2, ps)
    np.testing.assert_array_equal(ps[0].detach().numpy(), 2 * _initial()[0])
    assert ps[2].shape == ()
    with pytest.raises(TypeError, match="Tensor"):
        nn_utils.vector_to_parameters(np.zeros(11), ps)
    with pytest.raises(ValueError, match="11"):
        nn_utils.vector_to_parameters(tl.zeros(12), ps)


def test_parameters_to_vector_matches_torch():
    torch = pytest.importorskip("torch")
    vec = nn_utils.parameters_to_vector(_tl_params())
    ref = torch.nn.utils.parameters_to_vector(
        [torch.tensor(a, requires_grad=True) for a in _initial()])
    np.testing.assert_array_equal(vec.detach().numpy(), ref.detach().numpy())
