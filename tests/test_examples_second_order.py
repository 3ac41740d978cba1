"""The second-order examples learn (issue 15): Newton's method with double-backward Hessians,
a WGAN-GP gradient penalty, and MAML on sine waves. Each example runs a small configuration
through its importable ``main(argv)``; the pieces that differentiate a gradient are also
checked against PyTorch's ``autograd.grad(create_graph=True)`` in float64."""

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import autograd, func

from example_helpers import load_example


# ----- Newton's method -----------------------------------------------------------------------

def test_newton_converges_in_few_steps_where_gradient_descent_needs_many():
    r = load_example("newton").main(["--quick", "--quiet"])
    assert r["hessian_max_abs_diff"] < 1e-12, r["hessian_max_abs_diff"]
    logistic, rosen = r["logistic"], r["rosenbrock"]
    for problem in (logistic, rosen):
        assert problem["newton_steps"] <= 10, problem["newton_grad_norms"]
        assert problem["newton_grad_norms"][-1] < 1e-8
        # superlinear at the end (quadratic in theory): the last step at least multiplies
        # the number of correct digits of |g| by 1.5
        g = problem["newton_grad_norms"]
        assert g[-2] < 1 and g[-1] < g[-2] ** 1.5, g
    # logistic regression: tuned gradient descent gets there too, but needs far more steps
    assert logistic["gd_converged"] and logistic["gd_steps"] > 20 * logistic["newton_steps"]
    np.testing.assert_allclose(logistic["gd_w"], logistic["newton_w"], atol=1e-6)
    # Rosenbrock's valley: gradient descent is still far from |g| < 1e-8 after 2000 steps
    assert not rosen["gd_converged"] and rosen["gd_grad_norm"] > 1e-4, rosen["gd_grad_norm"]
    np.testing.assert_allclose(rosen["newton_w"], [1.0, 1.0], atol=1e-8)


def test_newton_hessians_match_the_written_out_ones_and_func_hessian():
    ex = load_example("newton")
    X, y = ex.make_logistic_data(30, seed=1)
    f = ex.logistic_loss(X, y, 0.1)
    w = np.array([0.2, -0.1, 0.4, 0.3])
    H = ex.value_gradient_hessian(f, w)[2]
    np.testing.assert_allclose(H, ex.logistic_hessian_by_hand(X, y, 0.1, w), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(H, func.hessian(f)(tg.tensor(w)).numpy(), rtol=1e-12,
                               atol=1e-14)
    # Rosenbrock: H = [[2 - 400 (y - 3 x^2), -400 x], [-400 x, 200]]
    x0, y0 = 0.7, -0.3
    by_hand = np.array([[2 - 400 * (y0 - 3 * x0 ** 2), -400 * x0], [-400 * x0, 200.0]])
    np.testing.assert_allclose(ex.value_gradient_hessian(ex.rosenbrock, np.array([x0, y0]))[2],
                               by_hand, rtol=1e-12)


# ----- gradient penalty ----------------------------------------------------------------------

def torch_critic(critic, torch):
    """The same Linear-tanh-Linear-tanh-Linear critic in PyTorch, with copied weights."""
    layers = []
    for m in critic:
        if hasattr(m, "weight"):
            lin = torch.nn.Linear(m.in_features, m.out_features).double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(m.weight.detach().numpy()))
                lin.bias.copy_(torch.tensor(m.bias.detach().numpy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def test_gradient_penalty_weight_gradients_match_torch():
    torch = pytest.importorskip("torch")
    ex = load_example("gradient_penalty")
    critic = ex.make_critic(hidden=8, seed=3)
    x_hat = ex.sample_interpolates(np.random.default_rng(4), 16)
    params = list(critic.parameters())
    ours = autograd.grad(ex.gradient_penalty(critic, x_hat), params, allow_unused=True)

    t_critic = torch_critic(critic, torch)
    x = torch.tensor(x_hat, requires_grad=True)
    gx, = torch.autograd.grad(t_critic(x).sum(), x, create_graph=True)
    penalty = (((gx * gx).sum(dim=1).sqrt() - 1) ** 2).mean()
    theirs = torch.autograd.grad(penalty, list(t_critic.parameters()), allow_unused=True)
    assert len(ours) == len(theirs) == 6
    # grad_x D does not depend on the last bias: no gradient there, in both
    assert ours[5] is None and theirs[5] is None
    for a, b in zip(ours[:5], theirs[:5]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)


def test_gradient_penalty_drives_the_input_gradient_norm_to_one():
    r = load_example("gradient_penalty").main(["--quick", "--quiet"])
    init, none, lam10, lam50 = r["init"], r["lam=0"], r["lam=10"], r["lam=50"]
    assert init["mean_abs_norm_minus_1"] > 0.5                   # far from 1 before training
    # the penalty pulls |grad_x D| to 1 on the interpolates, closer as lam grows ...
    assert lam10["mean_abs_norm_minus_1"] < 0.35, lam10
    assert lam50["mean_abs_norm_minus_1"] < min(0.1, lam10["mean_abs_norm_minus_1"]), lam50
    # ... while the critic without it grows its slope without bound
    assert none["mean_norm"] > 2.0, none
    # and the penalized critic still separates real from fake (positive Wasserstein estimate)
    assert lam50["wasserstein_estimate"] > 2.0, lam50


# ----- MAML ----------------------------------------------------------------------------------

def torch_meta_loss(params, batch, inner_steps, inner_lr, torch, create_graph=True):
    """maml_sine.meta_loss written with PyTorch ops (create_graph=False: first-order MAML)."""
    def mlp(p, x):
        h = torch.relu(x @ p[0] + p[1])
        h = torch.relu(h @ p[2] + p[3])
        return h @ p[4] + p[5]

    xs, ys, xq, yq = (torch.tensor(a) for a in batch)
    total = 0.0
    for t in range(len(xs)):
        p = params
        for _ in range(inner_steps):
            loss = ((mlp(p, xs[t]) - ys[t]) ** 2).mean()
            grads = torch.autograd.grad(loss, p, create_graph=create_graph)
            p = [w - inner_lr * g for w, g in zip(p, grads)]
        total = total + ((mlp(p, xq[t]) - yq[t]) ** 2).mean()
    return total / len(xs)


def test_maml_meta_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    ex = load_example("maml_sine")
    params = ex.init_params(hidden=6, seed=5)
    batch = ex.sample_batch(np.random.default_rng(6), 3, 4)
    ours_loss = ex.meta_loss(params, batch, inner_steps=2, inner_lr=0.05)
    ours = autograd.grad(ours_loss, params)

    t_params = [torch.tensor(w.detach().numpy(), requires_grad=True) for w in params]
    theirs_loss = torch_meta_loss(t_params, batch, 2, 0.05, torch)
    theirs = torch.autograd.grad(theirs_loss, t_params)
    np.testing.assert_allclose(ours_loss.item(), theirs_loss.item(), rtol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10)
    # the comparison sees the second-order terms: first-order MAML (the inner gradients
    # taken as constants) has a clearly different meta-gradient
    first_order = torch.autograd.grad(
        torch_meta_loss(t_params, batch, 2, 0.05, torch, create_graph=False), t_params)
    assert max(float((a - b).abs().max()) for a, b in zip(first_order, theirs)) > 1e-4


def test_maml_adapts_better_than_joint_pretraining():
    r = load_example("maml_sine").main(["--quick", "--quiet"])
    maml, pre = r["maml"], r["pretrained"]
    for steps in (1, 5, 10):
        assert maml[steps] < 0.75 * pre[steps], (steps, maml, pre)
    assert maml[10] < 0.5 * maml[0]                 # MAML's start is built to move fast
    assert pre[1] > 0.8 * pre[0]                    # the average wave barely moves in a step
