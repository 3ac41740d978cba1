"""Seed 000's linear regression, y = w_1 x_1 + ... + w_n x_n + b with the MSE loss, fitted by
gradient descent and by SGD, and checked against the closed-form least-squares solution.

    python examples/linear_regression.py [--quick] [--gd-steps 300] [--sgd-epochs 40]

Data: real prices that every install of this package has, Google's daily stock prices from
2004-08-19 to 2008-10-14 (1047 trading days), shipped with matplotlib as the sample file
``goog.npz`` (``matplotlib.cbook.get_sample_data``; matplotlib is a dependency). The target
is the day's move, close - open (dollars); the features are the day's excursions from the
open, high - open and open - low, and the log of the traded volume:

    y = w_1 (high - open) + w_2 (open - low) + w_3 log(volume) + b

The first 80% of the days train, the last 20% (2008, a more volatile year) are held out.
Features are standardized with the training mean and standard deviation (gradient descent
needs features of similar scale; the weights are reported back in the original units).

The formulas (seed 000, 4.1-4.3):

    MSE = (1/n) sum_i (y_i - y^_i)^2,   y^ = X w + b
    gradient descent  theta <- theta - eta grad_theta L(theta)             (all n rows)
    SGD               theta <- theta - eta grad_theta L(theta; x_i, y_i)   (one mini-batch)
    closed form       [w; b] = argmin |[X 1][w; b] - y|^2 = np.linalg.lstsq([X 1], y)

Five fits: the closed form; gradient descent written by hand (p <- p - lr * p.grad) and with
``optim.GD``; mini-batch SGD written by hand (with a decaying learning rate, so the noise of
the mini-batch gradients dies down and the iterates settle at the minimum) and with
``optim.SGD`` (momentum 0.9, ``StepLR`` decay).
"""
import argparse
import time

import matplotlib.cbook
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm import nn, optim
from tinygrad_llm.losses import mse_loss

FEATURES = ("high - open", "open - low", "log(volume)")


def load_goog():
    """(X (n, 3), y (n,), dates) from matplotlib's goog.npz sample data."""
    prices = matplotlib.cbook.get_sample_data("goog.npz")["price_data"]
    o, h, lo = prices["open"], prices["high"], prices["low"]
    X = np.stack([h - o, o - lo, np.log(prices["volume"].astype(np.float64))], axis=1)
    return X, prices["close"] - o, prices["date"]


def closed_form(X, y):
    """[w; b] minimizing |[X 1][w; b] - y|^2 (least squares)."""
    A = np.concatenate([X, np.ones((len(X), 1))], axis=1)                 # (n, d + 1)
    theta = np.linalg.lstsq(A, y, rcond=None)[0]
    return theta[:-1], float(theta[-1])


def gd_by_hand(X, y, lr, steps):
    """Full-batch gradient descent with tensors: p <- p - lr * dL/dp."""
    Xt, yt = tg.tensor(X), tg.tensor(y)
    w = tg.zeros(X.shape[1], dtype=Xt.dtype, requires_grad=True)         # (d,)
    b = tg.zeros((), dtype=Xt.dtype, requires_grad=True)
    for _ in range(steps):
        loss = mse_loss(Xt @ w + b, yt)            # (1/n) sum (y_i - y^_i)^2
        w.grad = b.grad = None
        loss.backward()
        with tg.no_grad():
            w.sub_(lr * w.grad)
            b.sub_(lr * b.grad)
    return w.detach().numpy().astype(np.float64), float(b.item())


def sgd_by_hand(X, y, lr, epochs, batch_size, seed):
    """Mini-batch SGD, lr_t = lr / (1 + t / (2 * batches per epoch))."""
    rng = np.random.default_rng(seed)
    w = tg.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    b = tg.zeros((), dtype=X.dtype, requires_grad=True)
    t, per_epoch = 0, -(-len(X) // batch_size)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for s in range(0, len(X), batch_size):
            idx = order[s:s + batch_size]
            loss = mse_loss(tg.tensor(X[idx]) @ w + b, tg.tensor(y[idx]))
            w.grad = b.grad = None
            loss.backward()
            step = lr / (1 + t / (2 * per_epoch))
            with tg.no_grad():
                w.sub_(step * w.grad)
                b.sub_(step * b.grad)
            t += 1
    return w.detach().numpy().astype(np.float64), float(b.item())


def fit_with_optimizer(X, y, make_opt, epochs, batch_size, seed, scheduler=None):
    """nn.Linear(d, 1) trained by an optimizer; batch_size=None is the full batch."""
    model = nn.Linear(X.shape[1], 1, generator=tg.Generator(seed), dtype=X.dtype)
    with tg.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = make_opt(model.named_parameters())
    sched = scheduler(opt) if scheduler else None
    rng = np.random.default_rng(seed)
    bs = batch_size or len(X)
    for _ in range(epochs):
        order = rng.permutation(len(X)) if batch_size else np.arange(len(X))
        for s in range(0, len(X), bs):
            idx = order[s:s + bs]
            loss = mse_loss(model(tg.tensor(X[idx])).reshape(-1), tg.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched:
            sched.step()
    return model.weight.detach().numpy()[0].astype(np.float64), float(model.bias.item())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="accepted for uniformity: the full run takes about a second")
    p.add_argument("--gd-steps", type=int, default=300)
    p.add_argument("--gd-lr", type=float, default=0.3)
    p.add_argument("--sgd-epochs", type=int, default=40)
    p.add_argument("--sgd-lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()

    X, y, dates = load_goog()
    n_train = int(0.8 * len(X))
    mean, std = X[:n_train].mean(0), X[:n_train].std(0)
    Z = (X - mean) / std                                                  # standardized
    Ztr, ytr, Zte, yte = Z[:n_train], y[:n_train], Z[n_train:], y[n_train:]
    say(f"goog.npz: {len(X)} days; train {dates[0]}..{dates[n_train - 1]}, held out "
        f"{dates[n_train]}..{dates[-1]}")

    fits = {"closed form (lstsq)": closed_form(Ztr, ytr),
            "GD by hand": gd_by_hand(Ztr, ytr, args.gd_lr, args.gd_steps),
            "GD (optim.GD)": fit_with_optimizer(
                Ztr, ytr, lambda ps: optim.GD(ps, lr=args.gd_lr), args.gd_steps, None,
                args.seed),
            "SGD by hand": sgd_by_hand(Ztr, ytr, args.sgd_lr, args.sgd_epochs,
                                       args.batch_size, args.seed),
            "SGD (optim.SGD)": fit_with_optimizer(
                Ztr, ytr, lambda ps: optim.SGD(ps, lr=args.sgd_lr / 10, momentum=0.9),
                args.sgd_epochs, args.batch_size, args.seed,
                scheduler=lambda o: optim.StepLR(o, max(1, args.sgd_epochs // 4), 0.3))}
    w_star, b_star = fits["closed form (lstsq)"]
    results = {"fits": {}, "n_train": n_train, "n_test": len(X) - n_train}
    say(f"{'method':22s} {'w (original units)':>32s} {'b':>8s} {'train MSE':>10s} "
        f"{'test MSE':>9s} {'|w-w*|/|w*|':>11s}")
    for name, (w, b) in fits.items():
        w_orig = w / std                          # y = w.(x - mean)/std + b = (w/std).x + b'
        b_orig = b - float(np.sum(w * mean / std))
        r = {"w": w, "b": b, "w_original": w_orig, "b_original": b_orig,
             "train_mse": float(np.mean((Ztr @ w + b - ytr) ** 2)),
             "test_mse": float(np.mean((Zte @ w + b - yte) ** 2)),
             "w_rel_err": float(np.linalg.norm(w - w_star) / np.linalg.norm(w_star)),
             "b_err": abs(b - b_star)}
        results["fits"][name] = r
        say(f"{name:22s} {np.array2string(w_orig, precision=4):>32s} {b_orig:8.3f} "
            f"{r['train_mse']:10.4f} {r['test_mse']:9.4f} {r['w_rel_err']:11.2e}")
    results["baseline_test_mse"] = float(np.mean((yte - ytr.mean()) ** 2))
    say(f"predicting the training mean gives test MSE {results['baseline_test_mse']:.4f}")
    results["seconds"] = time.time() - t0
    say(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
