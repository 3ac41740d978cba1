"""Optimizers, clipping and schedules: 10 steps against torch.optim in float64, state_dict
round trips (through JSON and arrays) that continue identically, and the numerics of zero,
missing and huge gradients."""
import json
import math

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import optim
from tinygrad_llm.losses import mse_loss
from tinygrad_llm import nn
from tinygrad_llm.nn import Linear
from tinygrad_llm.optim import SGD

CONFIGS = [
    ("GD", {"lr": 0.05}, "SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05}, "SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1},
     "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
     "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.05}, "Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1,
              "amsgrad": True},
     "Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1,
              "amsgrad": True}),
    ("AdamW", {"lr": 0.05}, "AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True},
     "AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
]


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 3)), rng.standard_normal((8, 2))


def _model():
    return Linear(3, 2, dtype=np.float64, generator=tg.Generator(0))


def _train(model, opt, steps, sched=None):
    x, y = _data()
    for _ in range(steps):
        opt.zero_grad()
        out = model(tg.tensor(x))
        (mse_loss(out, tg.tensor(y)) + (out * out * out).mean()).backward()  # not quadratic
        opt.step()
        if sched is not None:
            sched.step()


def _torch_train(torch, model, opt, steps, sched=None):
    x, y = (torch.from_numpy(a) for a in _data())
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        (torch.nn.functional.mse_loss(out, y) + (out ** 3).mean()).backward()
        opt.step()
        if sched is not None:
            sched.step()


def _torch_model(torch, model):
    ref = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            getattr(ref, name).copy_(torch.from_numpy(p.data))
    return ref


@pytest.mark.parametrize("ours,kw,theirs,tkw", CONFIGS)
def test_optimizers_match_torch(ours, kw, theirs, tkw):
    torch = pytest.importorskip("torch")
    model = _model()
    ref = _torch_model(torch, model)
    _train(model, getattr(optim, ours)(model.named_parameters(), **kw), 10)
    _torch_train(torch, ref, getattr(torch.optim, theirs)(ref.parameters(), **tkw), 10)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, getattr(ref, name).detach().numpy(), rtol=1e-5,
                                   atol=1e-10, err_msg=f"{ours} {kw}: {name}")


def _json_round_trip(state):
    """What a checkpoint does: arrays apart (as NumPy), the rest through JSON."""
    arrays = {}

    def split(x, path):
        if isinstance(x, np.ndarray):
            arrays[path] = x.copy()
            return {"__array__": path}
        if isinstance(x, dict):
            return {k: split(v, f"{path}/{k}") for k, v in x.items()}
        if isinstance(x, list):
            return [split(v, f"{path}/{i}") for i, v in enumerate(x)]
        return x

    def join(x):
        if isinstance(x, dict):
            return arrays[x["__array__"]] if "__array__" in x else {k: join(v)
                                                                   for k, v in x.items()}
        return [join(v) for v in x] if isinstance(x, list) else x

    return join(json.loads(json.dumps(split(state, ""))))


@pytest.mark.parametrize("ours,kw,theirs,tkw", CONFIGS)
def test_state_dict_round_trip_continues_identically(ours, kw, theirs, tkw):
    straight = _model()
    opt = getattr(optim, ours)(straight.named_parameters(), **kw)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    _train(straight, opt, 10, sched)

    first = _model()
    opt1 = getattr(optim, ours)(first.named_parameters(), **kw)
    sched1 = optim.StepLR(opt1, step_size=3, gamma=0.5)
    _train(first, opt1, 5, sched1)
    opt_state = _json_round_trip(opt1.state_dict())
    sched_state = json.loads(json.dumps(sched1.state_dict()))
    resumed = _model()
    resumed.load_state_dict(first.state_dict())
    opt2 = getattr(optim, ours)(resumed.named_parameters(), **kw)
    sched2 = optim.StepLR(opt2, step_size=3, gamma=0.5)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    _train(resumed, opt2, 5, sched2)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_state_dict_layout_and_load_errors():
    model = _model()
    opt = optim.Adam(model.named_parameters(), lr=0.1, amsgrad=True)
    _train(model, opt, 2)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == ["weight", "bias"]
    assert sd["param_groups"][0]["betas"] == [0.9, 0.999]
    assert set(sd["state"]["weight"]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"]["weight"]["step"] == 2
    sd["state"]["weight"]["exp_avg"][...] = 7.0     # a copy: the optimizer is unaffected
    assert not np.any(opt.state["weight"]["exp_avg"] == 7.0)
    unnamed = optim.Adam(_model().parameters())
    assert unnamed.param_groups[0]["param_names"] == ["0", "1"]
    with pytest.raises(ValueError, match="missing"):
        unnamed.load_state_dict(opt.state_dict())
    bad = opt.state_dict()
    bad["state"]["bias"]["exp_avg"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"bias.*\(5,\).*\(2,\)"):
        optim.Adam(_model().named_parameters()).load_state_dict(bad)


# ----- schedules ------------------------------------------------------------------------------

def _hf_linear(w, n):
    return lambda s: s / max(1, w) if s < w else max(0.0, (n - s) / max(1, n - w))


def _hf_cosine(w, n, cycles=0.5):
    def f(s):
        if s < w:
            return s / max(1, w)
        progress = (s - w) / max(1, n - w)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
    return f


SCHEDULES = [
    (lambda o: optim.LambdaLR(o, lambda s: 0.9 ** s),
     lambda t, o: t.optim.lr_scheduler.LambdaLR(o, lambda s: 0.9 ** s)),
    (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
     lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    (lambda o: optim.get_linear_schedule_with_warmup(o, 3, 10),
     lambda t, o: t.optim.lr_scheduler.LambdaLR(o, _hf_linear(3, 10))),
    (lambda o: optim.get_cosine_schedule_with_warmup(o, 4, 12),
     lambda t, o: t.optim.lr_scheduler.LambdaLR(o, _hf_cosine(4, 12))),
    (lambda o: optim.get_cosine_schedule_with_warmup(o, 0, 8, num_cycles=1.5),
     lambda t, o: t.optim.lr_scheduler.LambdaLR(o, _hf_cosine(0, 8, 1.5))),
]


@pytest.mark.parametrize("k", range(len(SCHEDULES)))
def test_schedules_match_torch_and_round_trip(k):
    torch = pytest.importorskip("torch")
    ours_fn, theirs_fn = SCHEDULES[k]
    model = _model()
    ref = _torch_model(torch, model)
    opt = optim.AdamW(model.named_parameters(), lr=0.05)
    topt = torch.optim.AdamW(ref.parameters(), lr=0.05)
    sched, tsched = ours_fn(opt), theirs_fn(torch, topt)
    lrs, tlrs = [sched.get_last_lr()[0]], [tsched.get_last_lr()[0]]
    for _ in range(12):
        _train(model, opt, 1, sched)
        _torch_train(torch, ref, topt, 1, tsched)
        lrs.append(sched.get_last_lr()[0])
        tlrs.append(tsched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, getattr(ref, name).detach().numpy(), rtol=1e-5)
    # a fresh scheduler restored from JSON continues with the same lrs
    again = ours_fn(optim.AdamW(_model().named_parameters(), lr=0.05))
    again.load_state_dict(json.loads(json.dumps(sched.state_dict())))
    for _ in range(3):
        sched.step()
        again.step()
        assert again.get_last_lr() == sched.get_last_lr()


def test_warmup_schedule_shape():
    opt = optim.SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.get_linear_schedule_with_warmup(opt, 2, 6)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(7):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0])


# ----- clipping -------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [tg.zeros(*g.shape, dtype=np.float64, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for a, b, g in zip(ours, theirs, grads):
        a.grad, b.grad = tg.tensor(g.copy()), torch.from_numpy(g.copy())
    total = optim.clip_grad_norm_(ours, 1.5, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type)
    np.testing.assert_allclose(total.item(), total_t.item(), rtol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-12)
    optim.clip_grad_value_(ours, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy())


def test_clip_grad_norm_error_if_nonfinite():
    p = tg.zeros(2, requires_grad=True)
    p.grad = tg.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ----- numerics and bookkeeping ---------------------------------------------------------------

@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_adam_zero_and_missing_gradients(cls):
    a = tg.tensor([1.0, -2.0], requires_grad=True)
    b = tg.tensor([3.0], requires_grad=True)
    opt = cls([("a", a), ("b", b)], lr=0.1, weight_decay=0.0)
    a.grad = tg.zeros(2)
    for _ in range(3):
        opt.step()
    np.testing.assert_array_equal(a.data, [1.0, -2.0])       # zero gradient: no movement
    np.testing.assert_array_equal(b.data, [3.0])             # no gradient: skipped ...
    assert "b" not in opt.state and opt.state["a"]["step"] == 3   # ... and no state


@pytest.mark.parametrize("make", [lambda p: optim.Adam(p), lambda p: optim.AdamW(p),
                                  lambda p: optim.Adam(p, amsgrad=True),
                                  lambda p: optim.SGD(p, lr=0.1, momentum=0.9)])
def test_huge_float32_gradients_give_no_nan(make):
    p = tg.tensor(np.ones(4, np.float32), requires_grad=True)
    opt = make([p])
    for sign in (1, -1, 1):
        p.grad = tg.tensor(np.full(4, sign * 1e30, np.float32))
        with np.errstate(over="ignore"):  # g^2 overflows to inf in float32; the step is 0
            opt.step()
        assert p.dtype == np.float32 and not np.any(np.isnan(p.data))
    q = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    q.grad = tg.tensor(np.full(3, 1e30, np.float32))
    total = optim.clip_grad_norm_([q], 1.0)
    assert np.isfinite(total.item()) and np.all(np.isfinite(q.grad.data))
    np.testing.assert_allclose(np.linalg.norm(q.grad.data.astype(np.float64)), 1.0, rtol=1e-5)


def test_step_bumps_version_so_stale_graphs_fail():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    loss = (p * p).sum()
    p.grad = tg.ones(2)
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_zero_grad_and_param_groups():
    model = _model()
    groups = [{"params": [("weight", model.weight)], "lr": 0.5},
              {"params": [("bias", model.bias)]}]
    opt = optim.SGD(groups, lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    _train(model, opt, 1)
    opt.zero_grad(set_to_none=False)
    assert np.all(model.weight.grad.data == 0)
    opt.zero_grad()
    assert model.weight.grad is None


def test_bad_arguments():
    p = tg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([])
    with pytest.raises(TypeError):
        optim.SGD(p)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2])


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_zero_dim_parameter_used_twice_trains_like_torch(weight_decay):
    """Regression: a 0-d parameter's gradient (two uses in one graph, or two backward calls)
    once became a NumPy scalar, and SGD's momentum buffer made from it never updated again."""
    e = nn.Parameter(tg.tensor(1.0))
    opt = SGD([e], lr=0.1, momentum=0.9, weight_decay=weight_decay)
    ours = []
    for _ in range(4):
        opt.zero_grad()
        (e * 2 + e * 3).backward()
        opt.step()
        ours.append(e.item())
    assert isinstance(e.grad.data, np.ndarray) and e.grad.data.shape == ()
    # torch's values (computed by hand from its update rule for weight_decay=0)
    if weight_decay == 0.0:
        np.testing.assert_allclose(ours, [0.5, -0.45, -1.805, -3.5245], rtol=1e-6)
    torch = pytest.importorskip("torch")
    t = torch.nn.Parameter(torch.tensor(1.0))
    topt = torch.optim.SGD([t], lr=0.1, momentum=0.9, weight_decay=weight_decay)
    theirs = []
    for _ in range(4):
        topt.zero_grad()
        (t * 2 + t * 3).backward()
        topt.step()
        theirs.append(t.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_zero_dim_gradient_accumulates_over_two_backward_calls():
    e = nn.Parameter(tg.tensor(1.0))
    (e * 2).backward()
    (e * 3).backward()
    assert isinstance(e.grad.data, np.ndarray) and float(e.grad.data) == 5.0
