"""Newton's method with the Hessian from double backward, against gradient descent.

    python examples/newton.py [--quick] [--quiet]

Newton's method models the loss near w by its second-order Taylor expansion and jumps to
that model's minimum:

    f(w + d) ~ f(w) + g . d + (1/2) d . H d,   g = grad f(w),  H = Hessian of f at w
    w <- w - H^{-1} g                          (solve H d = g, then w <- w - d)

Near a minimum with H positive definite it converges quadratically (the number of correct
digits doubles every step), where gradient descent w <- w - lr g converges linearly, at a rate
set by the condition number of H.

Both derivatives come from the library's reverse mode:

    g = autograd.grad(f(w), w, create_graph=True)    g carries a graph: a function of w
    H[i] = autograd.grad(g, w, grad_outputs=e_i)      row i = e_i^T dg/dw, one pass per row

Two problems, both non-quadratic (so Newton needs more than one step):

1. L2-regularized logistic regression on a generated dataset (n points, d features plus a
   bias, features on different scales): y in {-1, +1},

       f(w) = (1/n) sum_i log(1 + exp(-y_i x_i . w)) + (lam/2) |w|^2
       g = -(1/n) sum_i y_i s(-y_i x_i . w) x_i + lam w
       H = (1/n) X^T diag(s_i (1 - s_i)) X + lam I,   s_i = s(x_i . w)

   The Hessian written out is also checked against the double-backward one.
2. Rosenbrock's banana f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1), minimum (1, 1):
   a curved valley where gradient descent crawls.

Gradient descent gets a tuned step: lr = c / L for c in a small grid, L the largest eigenvalue
of the Hessian at the start, and the grid value that reaches |g| < tol in the fewest steps wins.

Measured (full run, tol 1e-8): logistic regression, Newton 5 steps, gradient descent 356 (lr
4/L); Rosenbrock, Newton 6 steps, gradient descent 26,258 (lr 2.5/L).
"""
import argparse

import numpy as np

import tinygrad_llm as tg
from tinygrad_llm import autograd


# ----- the two problems ----------------------------------------------------------------------

def make_logistic_data(n, seed):
    """X (n, 4): three features on scales 1, 3 and 0.3, and a column of ones (the bias);
    y (n,) in {-1, +1}, drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 3)) * np.array([1.0, 3.0, 0.3])
    X = np.concatenate([features, np.ones((n, 1))], axis=1)                    # (n, 4)
    w_true = np.array([1.5, -0.5, 2.0, 0.3])
    p_positive = 1.0 / (1.0 + np.exp(-X @ w_true))
    y = np.where(rng.uniform(size=n) < p_positive, 1.0, -1.0)
    return X, y


def logistic_loss(X, y, lam):
    """f(w) = (1/n) sum_i log(1 + exp(-y_i x_i . w)) + (lam/2) |w|^2, as a function of w."""
    Xt, yt = tg.tensor(X), tg.tensor(y)

    def f(w):
        margins = yt * (Xt @ w)                                                # (n,)
        return (1.0 + (-margins).exp()).log().mean() + 0.5 * lam * (w * w).sum()
    return f


def logistic_hessian_by_hand(X, y, lam, w):
    """H = (1/n) X^T diag(s (1 - s)) X + lam I, s = sigmoid(X w) (y_i^2 = 1 drops out)."""
    s = 1.0 / (1.0 + np.exp(-X @ w))
    return (X * (s * (1 - s))[:, None]).T @ X / len(X) + lam * np.eye(X.shape[1])


def rosenbrock(p):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2."""
    x, y = p[0], p[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


# ----- derivatives by double backward --------------------------------------------------------

def value_gradient_hessian(f, w):
    """f(w), g = df/dw and H = d^2 f/dw^2 at w (a 1-D NumPy array), from autograd.grad."""
    wt = tg.tensor(w, requires_grad=True)
    loss = f(wt)
    g, = autograd.grad(loss, wt, create_graph=True)        # g is differentiable: a graph of w
    rows = []
    for i in range(len(w)):
        e_i = tg.tensor(np.eye(len(w))[i])
        row, = autograd.grad(g, wt, grad_outputs=e_i, retain_graph=True)   # e_i^T dg/dw
        rows.append(row.numpy())
    return loss.item(), g.detach().numpy(), np.stack(rows)


def value_and_gradient(f, w):
    """f(w) and df/dw (first order only: no graph is recorded by the backward pass)."""
    wt = tg.tensor(w, requires_grad=True)
    loss = f(wt)
    g, = autograd.grad(loss, wt)
    return loss.item(), g.numpy()


# ----- the two methods -----------------------------------------------------------------------

def newton(f, w0, tol, max_steps, log=print):
    """w <- w - H^{-1} g until |g| < tol; returns (w, [(loss, |g|) per step])."""
    w, history = np.array(w0, dtype=np.float64), []
    for step in range(max_steps + 1):
        loss, g, H = value_gradient_hessian(f, w)
        history.append((loss, float(np.linalg.norm(g))))
        log(f"  newton step {step:2d}  loss {loss:.12f}  |g| {history[-1][1]:.3e}")
        if history[-1][1] < tol:
            break
        w = w - np.linalg.solve(H, g)                  # the minimum of the quadratic model
    return w, history


def gradient_descent(f, w0, lr, tol, max_steps):
    """w <- w - lr g until |g| < tol, max_steps, or divergence; returns (w, steps, |g|)."""
    w = np.array(w0, dtype=np.float64)
    for step in range(max_steps + 1):
        loss, g = value_and_gradient(f, w)
        norm = float(np.linalg.norm(g))
        if norm < tol or not np.isfinite(loss) or norm > 1e8:
            break
        w = w - lr * g
    return w, step, norm


def tuned_gradient_descent(f, w0, tol, max_steps, grid, log=print):
    """Gradient descent with lr = c / L for each c in grid; the run that converges in the
    fewest steps (or, if none converges, ends with the smallest |g|). A run stops once it is
    slower than the best one so far."""
    _, _, H0 = value_gradient_hessian(f, np.asarray(w0, dtype=np.float64))
    L = float(np.linalg.eigvalsh(H0).max())
    runs = []
    for c in grid:
        fastest = min([r["steps"] for r in runs if r["converged"]], default=max_steps)
        w, steps, norm = gradient_descent(f, w0, c / L, tol, fastest)
        converged = norm < tol
        log(f"  gradient descent lr = {c:g}/L = {c / L:.3g}: "
            + (f"|g| < {tol:g} after {steps} steps" if converged
               else f"|g| = {norm:.3e} after {steps} steps"))
        runs.append({"lr": c / L, "steps": steps, "grad_norm": norm, "converged": converged,
                     "w": w})
    return min(runs, key=lambda r: (not r["converged"], r["steps"], r["grad_norm"]))


def compare(name, f, w0, tol, newton_steps, gd_steps, grid, log):
    log(f"{name}: Newton's method")
    w_newton, history = newton(f, w0, tol, newton_steps, log)
    log(f"{name}: gradient descent (at most {gd_steps} steps)")
    best = tuned_gradient_descent(f, w0, tol, gd_steps, grid, log)
    return {"newton_w": w_newton.tolist(), "newton_steps": len(history) - 1,
            "newton_losses": [h[0] for h in history],
            "newton_grad_norms": [h[1] for h in history],
            "gd_w": best["w"].tolist(), "gd_steps": best["steps"], "gd_lr": best["lr"],
            "gd_grad_norm": best["grad_norm"], "gd_converged": best["converged"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer gradient-descent steps")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--n", type=int, default=200, help="logistic regression data points")
    parser.add_argument("--lam", type=float, default=1e-2, help="L2 regularization")
    parser.add_argument("--tol", type=float, default=1e-8, help="stop when |g| < tol")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else print
    gd_cap = {"logistic": 2000 if args.quick else 20000,
              "rosenbrock": 2000 if args.quick else 50000}

    X, y = make_logistic_data(args.n, args.seed)
    f = logistic_loss(X, y, args.lam)
    w_check = np.array([0.3, -0.2, 0.5, 0.1])
    H_auto = value_gradient_hessian(f, w_check)[2]
    H_hand = logistic_hessian_by_hand(X, y, args.lam, w_check)
    result = {"hessian_max_abs_diff": float(np.abs(H_auto - H_hand).max())}
    log(f"logistic Hessian: double backward vs written out, max |diff| "
        f"{result['hessian_max_abs_diff']:.2e}")
    result["logistic"] = compare("logistic regression", f, np.zeros(4), args.tol, 20,
                                 gd_cap["logistic"], (1.0, 2.0, 4.0, 8.0), log)
    result["rosenbrock"] = compare("Rosenbrock", rosenbrock, np.array([-1.2, 1.0]), args.tol,
                                   20, gd_cap["rosenbrock"], (1.0, 1.5, 2.0, 2.5), log)
    for name in ("logistic", "rosenbrock"):
        r = result[name]
        gd = (f"{r['gd_steps']} steps" if r["gd_converged"]
              else f"not converged after {r['gd_steps']} steps (|g| {r['gd_grad_norm']:.1e})")
        log(f"{name}: Newton {r['newton_steps']} steps, tuned gradient descent {gd}")
    return result


if __name__ == "__main__":
    main()
