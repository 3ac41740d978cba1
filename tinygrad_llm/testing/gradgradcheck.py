"""gradgradcheck: check second derivatives against finite differences of the first, in float64;
and three properties of derivatives, ready for hypothesis.

For ``fn`` with outputs y_k and fixed random upstream gradients g_k, the first-order gradient
(the vector-Jacobian product that ``backward`` computes) is

    G_j(x, g) = d/dx_j sum_k <g_k, y_k(x)>          one per checked input x_j

gradgradcheck picks fixed random w_j and checks the derivatives of the scalar

    S(x, g) = sum_j <w_j, G_j(x, g)>

with respect to every checked input x and every upstream gradient g. Analytic: one backward
pass with create_graph=True gives G with its graph, a second backward pass seeded with w gives
dS/dx and dS/dg (the vjp of the vjp). Numerical: central differences of S, each S computed by
a plain first-order backward pass:

    dS/dv_i  ~=  (S(v + eps e_i) - S(v - eps e_i)) / (2 eps)

per element when at most ``max_elementwise`` numbers are checked, else along ``n_directions``
random unit directions u (<dS/dv, u> against the difference quotient along u). dS/dx checks the
second derivative of each op; dS/dg = J w checks that the backward graph depends on g
correctly, which jvp's double-vjp trick relies on. As in gradcheck, keep inputs away from kinks.
"""
import numpy as np

from .. import autograd, func
from ..backend import get_array_module, to_numpy
from ..tensor import Tensor
from .gradcheck import GradcheckError, _as_outputs


class GradgradcheckError(GradcheckError):
    """A second derivative disagrees with finite differences of the first (says where)."""


class _Problem:
    """fn, the checked inputs and the upstream gradients, evaluated at given values."""

    def __init__(self, fn, inputs, checked):
        self.fn, self.inputs, self.checked = fn, inputs, checked
        self.no_graph = []   # checked inputs whose gradient came back without a graph

    def first(self, x_values, g_values, create_graph):
        """(leaves of x, leaves of g, G as a list with None where an input is not reached)."""
        args = list(self.inputs)
        xs = []
        for i, v in zip(self.checked, x_values):
            args[i] = Tensor._wrap(v).requires_grad_()
            xs.append(args[i])
        gs = [None if v is None else Tensor._wrap(v).requires_grad_(create_graph)
              for v in g_values]
        with autograd.enable_grad():
            outs = _as_outputs(self.fn(*args), "gradgradcheck")
            pairs = [(o, g) for o, g in zip(outs, gs) if g is not None and o.requires_grad]
            if not pairs:
                raise ValueError("gradgradcheck: no floating point output of fn depends on a "
                                 "checked input")
            G = autograd.grad([o for o, _ in pairs], xs, grad_outputs=[g for _, g in pairs],
                              create_graph=create_graph, allow_unused=True)
        return xs, [g for g in gs if g is not None], list(G)

    def objective(self, x_values, g_values, w):
        """S = sum_j <w_j, G_j>, with G from a plain first-order backward pass."""
        _, _, G = self.first(x_values, g_values, create_graph=False)
        return sum(float((to_numpy(Gj.data) * wj).sum()) for Gj, wj in zip(G, w)
                   if Gj is not None)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, n_directions=3, seed=0, max_elementwise=64):
    """Check the second derivatives of ``fn(*inputs)`` w.r.t. every float64 input that
    requires grad, and the derivatives of its backward w.r.t. the upstream gradients.

    Returns True, or raises GradgradcheckError naming the variable ("input i" or
    "grad_output k"), the worst index, both values and the largest error (returns False
    instead when ``raise_exception=False``). ``grad_outputs`` (one array or None per output)
    defaults to standard normal draws from ``seed``.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad; create inputs with "
                         "requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradgradcheck: input {i} has dtype {inputs[i].dtype}; finite "
                            f"differences of gradients need float64")
    rng = np.random.default_rng(seed)
    problem = _Problem(fn, inputs, checked)
    x_values = [inputs[i].data.copy() for i in checked]
    with autograd.no_grad():
        outs = _as_outputs(fn(*inputs), "gradgradcheck")
    if grad_outputs is None:
        grad_outputs = [rng.standard_normal(o.shape) if o.dtype.kind == "f" else None
                        for o in outs]
    g_values = [None if g is None else
                get_array_module(o.data).asarray(to_numpy(getattr(g, "data", g)), o.dtype)
                for g, o in zip(grad_outputs, outs)]
    names = [f"input {i}" for i in checked] + [f"grad_output {k}" for k, g in
                                               enumerate(g_values) if g is not None]
    try:
        analytic, w = _analytic(problem, x_values, g_values, rng)
        total = sum(a.size for a in analytic)
        if total <= max_elementwise:
            _elementwise(problem, x_values, g_values, w, analytic, names, eps, atol, rtol)
        else:
            _directional(problem, x_values, g_values, w, analytic, names, eps, atol, rtol,
                         rng, n_directions)
    except GradgradcheckError:
        if not raise_exception:
            return False
        raise
    return True


def _analytic(problem, x_values, g_values, rng):
    """(dS/dx and dS/dg as float64 NumPy arrays, the random weights w)."""
    xs, gs, G = problem.first(x_values, g_values, create_graph=True)
    _, _, G_plain = problem.first(x_values, g_values, create_graph=False)
    w = [rng.standard_normal(x.shape) for x in xs]
    for j, (a, b) in enumerate(zip(G, G_plain)):
        if (a is None) != (b is None) or (a is not None and not np.allclose(
                to_numpy(a.data), to_numpy(b.data), rtol=1e-10, atol=1e-12)):
            raise GradgradcheckError(
                f"input {problem.checked[j]}: the first derivative differs between "
                f"create_graph=True and create_graph=False (a backward formula computes "
                f"something else on Tensors than on arrays)")
    pairs = [(Gj, wj) for Gj, wj in zip(G, w) if Gj is not None and Gj.requires_grad]
    variables = xs + gs
    if pairs:
        found = autograd.grad([Gj for Gj, _ in pairs], variables, allow_unused=True,
                              grad_outputs=[Tensor._wrap(get_array_module(Gj.data).asarray(
                                  wj, Gj.dtype)) for Gj, wj in pairs])
    else:
        found = [None] * len(variables)
    analytic = [np.zeros(v.shape) if d is None else to_numpy(d.data).astype(np.float64)
                for d, v in zip(found, variables)]
    problem.no_graph = [problem.checked[j] for j, Gj in enumerate(G)
                        if Gj is not None and not Gj.requires_grad]
    return analytic, w


def _values_plus(x_values, g_values, k, flat_index, delta):
    """Copies of the values with variable k (x's first, then the g's that exist) changed."""
    xs = [v.copy() for v in x_values]
    gs = [None if v is None else v.copy() for v in g_values]
    targets = xs + [v for v in gs if v is not None]
    if flat_index is None:
        targets[k] += delta
    else:
        targets[k].reshape(-1)[flat_index] += delta
    return xs, gs


def _hint(problem):
    if not problem.no_graph:
        return ""
    return (f" The gradient of input(s) {problem.no_graph} carries no graph under "
            f"create_graph=True: some backward returned a constant.")


def _elementwise(problem, x_values, g_values, w, analytic, names, eps, atol, rtol):
    for k, (a, name) in enumerate(zip(analytic, names)):
        numeric = np.zeros(a.size)
        for i in range(a.size):
            plus = problem.objective(*_values_plus(x_values, g_values, k, i, eps), w)
            minus = problem.objective(*_values_plus(x_values, g_values, k, i, -eps), w)
            numeric[i] = (plus - minus) / (2 * eps)
        flat = a.reshape(-1)
        excess = np.abs(flat - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(excess > 0) or not np.all(np.isfinite(flat)):
            worst = int(np.argmax(np.where(np.isfinite(flat), excess, np.inf)))
            index = tuple(int(v) for v in np.unravel_index(worst, a.shape))
            raise GradgradcheckError(
                f"gradgradcheck failed for {name} (shape {a.shape}) at index {index}: the "
                f"derivative of the gradient (vjp of the vjp) is {flat[worst]:.10g}, finite "
                f"differences of the gradient give {numeric[worst]:.10g}; max abs error "
                f"{np.max(np.abs(flat - numeric)):.3g}; "
                f"{int(np.sum(excess > 0))} of {a.size} elements differ (eps={eps}, "
                f"atol={atol}, rtol={rtol})." + _hint(problem))


def _directional(problem, x_values, g_values, w, analytic, names, eps, atol, rtol, rng,
                 n_directions):
    for d in range(n_directions):
        dirs = [rng.standard_normal(a.shape) for a in analytic]
        norm = np.sqrt(sum(float((u * u).sum()) for u in dirs))
        dirs = [u / norm for u in dirs]
        values = []
        for sign in (1.0, -1.0):
            xs = [v.copy() for v in x_values]
            gs = [None if v is None else v.copy() for v in g_values]
            for target, u in zip(xs + [v for v in gs if v is not None], dirs):
                target += get_array_module(target).asarray(sign * eps * u, target.dtype)
            values.append(problem.objective(xs, gs, w))
        numeric = (values[0] - values[1]) / (2 * eps)
        a = sum(float((g * u).sum()) for g, u in zip(analytic, dirs))
        if not abs(a - numeric) <= atol + rtol * abs(numeric):
            if sum(x.size for x in analytic) <= 4096:   # small enough: find the worst element
                _elementwise(problem, x_values, g_values, w, analytic, names, eps, atol, rtol)
            raise GradgradcheckError(
                f"gradgradcheck failed along random direction {d} over {', '.join(names)}: "
                f"analytic {a:.10g} vs numerical {numeric:.10g}, error {abs(a - numeric):.3g} "
                f"(eps={eps}, atol={atol}, rtol={rtol})." + _hint(problem))


# ----- properties for hypothesis -----------------------------------------------------------------

def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))


def _numpy(t):
    return to_numpy(t.detach().data).astype(np.float64)


def check_hessian_symmetric(f, x, atol=1e-8, rtol=1e-6):
    """H = hessian(f)(x) equals its transpose: d^2f/dx_i dx_j == d^2f/dx_j dx_i (Schwarz),
    for f twice continuously differentiable. Returns True or raises AssertionError."""
    x = _tensor(x)
    n = x.numel()
    H = _numpy(func.hessian(f)(x)).reshape(n, n)
    error = np.abs(H - H.T) - (atol + rtol * np.abs(H))
    if np.any(error > 0):
        i, j = np.unravel_index(int(np.argmax(error)), H.shape)
        raise AssertionError(f"Hessian not symmetric: H[{i}, {j}] = {H[i, j]:.10g} but "
                             f"H[{j}, {i}] = {H[j, i]:.10g} (flat indices of x)")
    return True


def check_hvp_matches_finite_differences(f, x, v, eps=1e-6, atol=1e-5, rtol=1e-3):
    """hvp(f, (x,), (v,)) == (grad f(x + eps v) - grad f(x - eps v)) / (2 eps), elementwise.
    Returns True or raises AssertionError."""
    x, v = _tensor(x), _tensor(v)
    _, (hv,) = func.hvp(f, (x,), (v,))
    g = func.grad(f)
    xp = get_array_module(x.data)
    step = xp.asarray(eps * v.data, dtype=x.dtype)
    numeric = (_numpy(g(Tensor._wrap(x.data + step))) -
               _numpy(g(Tensor._wrap(x.data - step)))) / (2 * eps)
    analytic = _numpy(hv)
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if np.any(excess > 0):
        k = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), analytic.shape))
        raise AssertionError(f"hvp disagrees with finite differences of grad at index {k}: "
                             f"analytic {analytic[k]:.10g} vs numerical {numeric[k]:.10g}")
    return True


def check_jvp_vjp_adjoint(f, x, u, v, atol=1e-8, rtol=1e-6):
    """<u, J v> == <J^T u, v>: jvp and vjp use the same Jacobian (u shaped like f(x), v like
    x). Returns True or raises AssertionError."""
    x, u, v = _tensor(x), _tensor(u), _tensor(v)
    _, jv = func.jvp(f, (x,), (v,))
    _, vjp_fn = func.vjp(f, x)
    (jtu,) = vjp_fn(u)
    lhs = float((_numpy(u) * _numpy(jv)).sum())
    rhs = float((_numpy(jtu) * _numpy(v)).sum())
    if not abs(lhs - rhs) <= atol + rtol * max(abs(lhs), abs(rhs)):
        raise AssertionError(f"<u, J v> = {lhs:.12g} but <J^T u, v> = {rhs:.12g}: jvp and "
                             f"vjp disagree")
    return True
