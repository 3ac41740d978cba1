"""A gradient penalty (WGAN-GP, Gulrajani et al. 2017) on a tiny critic: backprop through a
gradient.

    python examples/gradient_penalty.py [--quick] [--quiet] [--steps 400]

A Wasserstein critic D scores points; it is trained to score real points high and generated
("fake") points low, and it must be 1-Lipschitz: |grad_x D(x)| <= 1. WGAN-GP asks for that
softly, by penalizing the input-gradient's norm away from 1 on random interpolates
x^ = e x_real + (1 - e) x_fake, e ~ U(0, 1):

    loss = mean D(x_fake) - mean D(x_real)  +  lam mean_i (|grad_x D(x^_i)|_2 - 1)^2
           '------- critic loss -------'        '---------- gradient penalty ----------'

The penalty contains a gradient, so training the weights differentiates a gradient:

    gx, = autograd.grad(D(x^).sum(), x^, create_graph=True)   row i: grad_x D(x^_i) (rows
                                                              are independent samples)
    penalty = ((sqrt(sum(gx^2, axis=1)) - 1)^2).mean()         a graph of the weights ...
    loss.backward()                                            ... differentiated again

Here only the critic half of a WGAN is trained, against a fixed fake distribution (a Gaussian
blob at (-2, 0)) and real points on a ring around (2, 0), so that what the penalty does is
visible alone. The optimal 1-Lipschitz critic has gradient norm 1 along the lines from fake to
real points, and the penalty drives the norm on the interpolates there: with lam = 10 it settles
a little above 1 (the critic loss pulls it up, the penalty pulls it back, an equilibrium that
moves to 1 as lam grows), without the penalty it grows without bound, as the weights do.

Critic: Linear(2, H) -> tanh -> Linear(H, H) -> tanh -> Linear(H, 1), float64, Adam with
betas (0.5, 0.9) as in the paper.

Measured (full run, 400 steps), mean input-gradient norm on 512 held-out interpolates:
untrained 0.15; lam = 0: 4.05 (and growing); lam = 10: 1.20; lam = 50: 1.04.
"""
import argparse

import numpy as np

import tinygrad_llm as tg
from tinygrad_llm import autograd, nn, optim
from tinygrad_llm.creation import Generator


def make_critic(hidden=16, seed=0):
    """Linear(2, H) -> tanh -> Linear(H, H) -> tanh -> Linear(H, 1), float64."""
    gen = Generator(seed)
    return nn.Sequential(nn.Linear(2, hidden, generator=gen), nn.Tanh(),
                         nn.Linear(hidden, hidden, generator=gen), nn.Tanh(),
                         nn.Linear(hidden, 1, generator=gen)).double()


def sample_real(rng, n):
    """n points on the unit circle around (2, 0)."""
    angle = rng.uniform(0.0, 2 * np.pi, n)
    return np.stack([2.0 + np.cos(angle), np.sin(angle)], axis=1)             # (n, 2)


def sample_fake(rng, n):
    """n points of N((-2, 0), 0.5^2 I)."""
    return rng.normal(size=(n, 2)) * 0.5 + np.array([-2.0, 0.0])                # (n, 2)


def sample_interpolates(rng, n):
    """x^ = e x_real + (1 - e) x_fake, one e ~ U(0, 1) per pair."""
    e = rng.uniform(size=(n, 1))
    return e * sample_real(rng, n) + (1 - e) * sample_fake(rng, n)              # (n, 2)


def input_gradient_norms(critic, x, create_graph=False):
    """|grad_x D(x_i)|_2 for each row x_i of x (n, 2). With create_graph=True the norms are a
    differentiable function of the critic's weights."""
    x = tg.tensor(x, requires_grad=True)
    gx, = autograd.grad(critic(x).sum(), x, create_graph=create_graph)         # (n, 2)
    return (gx * gx).sum(dim=1).sqrt()                                          # (n,)


def gradient_penalty(critic, x_hat):
    """mean_i (|grad_x D(x^_i)|_2 - 1)^2, differentiable w.r.t. the critic's weights."""
    norms = input_gradient_norms(critic, x_hat, create_graph=True)
    return ((norms - 1.0) ** 2).mean()


def critic_loss(critic, real, fake):
    """mean D(fake) - mean D(real): minimized, it is minus the Wasserstein-1 estimate."""
    return critic(tg.tensor(fake)).mean() - critic(tg.tensor(real)).mean()


def train(critic, steps, lam, lr=1e-3, batch=64, seed=0):
    """Adam on critic loss + lam * gradient penalty; returns the loss per step."""
    rng = np.random.default_rng(seed)
    opt = optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    history = []
    for _ in range(steps):
        real, fake = sample_real(rng, batch), sample_fake(rng, batch)
        loss = critic_loss(critic, real, fake)
        if lam:
            loss = loss + lam * gradient_penalty(critic, sample_interpolates(rng, batch))
        opt.zero_grad()
        loss.backward()                  # through the penalty's backward pass into the weights
        opt.step()
        history.append(loss.item())
    return history


def evaluate(critic, x_hat, real, fake):
    """Input-gradient norms on held-out interpolates and the Wasserstein estimate."""
    norms = input_gradient_norms(critic, x_hat).numpy()
    with tg.no_grad():
        w_estimate = -critic_loss(critic, real, fake).item()
    return {"mean_norm": float(norms.mean()), "mean_abs_norm_minus_1": float(
        np.abs(norms - 1).mean()), "wasserstein_estimate": w_estimate}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="Adam steps (400, quick 250)")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--lams", type=float, nargs="+", default=[0.0, 10.0, 50.0],
                        help="penalty weights to train with, one critic each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else print
    steps = args.steps or (250 if args.quick else 400)

    held_out = np.random.default_rng(args.seed + 1000)
    x_hat = sample_interpolates(held_out, 512)
    real, fake = sample_real(held_out, 2000), sample_fake(held_out, 2000)
    result = {"init": evaluate(make_critic(args.hidden, args.seed), x_hat, real, fake),
              "steps": steps}
    log(f"untrained critic: mean |grad_x D| {result['init']['mean_norm']:.3f}")
    for lam in args.lams:
        critic = make_critic(args.hidden, args.seed)
        history = train(critic, steps, lam, seed=args.seed)
        r = evaluate(critic, x_hat, real, fake)
        r["first_loss"], r["last_loss"] = history[0], history[-1]
        result[f"lam={lam:g}"] = r
        log(f"lam = {lam:4g}: mean |grad_x D| {r['mean_norm']:.3f}, mean ||grad_x D| - 1| "
            f"{r['mean_abs_norm_minus_1']:.3f}, Wasserstein estimate "
            f"{r['wasserstein_estimate']:.3f}")
    return result


if __name__ == "__main__":
    main()
