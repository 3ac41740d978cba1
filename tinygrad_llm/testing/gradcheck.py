"""gradcheck: compare autograd's gradients with central finite differences, in float64.

For a function ``fn`` of tensors with outputs y_k, pick fixed random "upstream" gradients g_k
and look at the scalar

    L(x) = sum_k < g_k, y_k(x) >

Autograd gives dL/dx in one backward pass (a vector-Jacobian product). The numerical estimate
is the central difference

    dL/dx_i  ~=  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)          (error O(eps^2))

taken per element ("elementwise" mode, 2 forward passes per element) or along a few random
unit directions u ("directional" mode: <dL/dx, u> ~= (L(x + eps u) - L(x - eps u)) / (2 eps),
2 forward passes per direction, for large inputs). A pair passes when
|analytic - numeric| <= atol + rtol * |numeric|.

Central differences need float64: in float32 the rounding error of L (about 1e-7 relative)
divided by 2 eps swamps the result, so float32 inputs are refused unless
``allow_low_precision=True`` (which also loosens the defaults). At a kink (relu at 0, abs at 0,
ties in max) the central difference returns the mean of the one-sided slopes and will not match
the documented subgradient: keep test inputs away from kinks.
"""
import numpy as np

from .. import autograd
from ..backend import get_array_module, to_numpy
from ..tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one (the message says where)."""


def _as_outputs(out, checker="gradcheck"):
    """fn's result as a tuple of Tensors (TypeError naming ``checker`` otherwise)."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"{checker}: fn must return a Tensor or a tuple of Tensors, got "
                            f"{type(o).__name__}")
    return tuple(outs)


def _objective(fn, inputs, grad_outputs):
    """L(x) = sum_k <g_k, y_k(x)>, accumulated in float64, without recording a graph."""
    with autograd.no_grad():
        outs = _as_outputs(fn(*inputs))
    total = 0.0
    for o, g in zip(outs, grad_outputs):
        if g is not None:
            total += float((to_numpy(o.data).astype(np.float64) * to_numpy(g)).sum())
    return total, outs


def _analytic(fn, inputs, checked, grad_outputs, scale=1.0):
    """dL/dx for each checked input by one backward pass (returns float64 NumPy arrays)."""
    saved = [t.grad for t in inputs if isinstance(t, Tensor)]
    for i in checked:
        inputs[i].grad = None
    outs = _as_outputs(fn(*inputs))
    n_back = 0
    for o, g in zip(outs, grad_outputs):
        if g is not None and o.requires_grad:
            n_back += 1
    seen = 0
    for o, g in zip(outs, grad_outputs):
        if g is None or not o.requires_grad:
            continue
        seen += 1
        xp = get_array_module(o.data)
        o.backward(xp.asarray(g * scale, dtype=o.dtype), retain_graph=seen < n_back)
    grads = []
    for i in checked:
        t = inputs[i]
        if t.grad is None:
            grads.append(np.zeros(t.shape))
        else:
            if t.grad.shape != t.shape or t.grad.dtype != t.dtype:
                raise GradcheckError(
                    f"input {i}: gradient has shape {t.grad.shape} and dtype {t.grad.dtype}, "
                    f"but the input has shape {t.shape} and dtype {t.dtype}")
            grads.append(to_numpy(t.grad.data).astype(np.float64))
    k = 0
    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = saved[k]
            k += 1
    return grads


def gradcheck(fn, inputs, *, eps=None, atol=None, rtol=None, mode="auto", n_directions=3,
              seed=0, grad_outputs=None, allow_low_precision=False, check_linearity=True,
              max_elementwise=512, raise_exception=True):
    """Check the gradients of ``fn(*inputs)`` w.r.t. every float input with requires_grad.

    Returns True, or raises GradcheckError naming the input, the worst index and both values
    (returns False instead when ``raise_exception=False``). ``mode`` is "elementwise",
    "directional" or "auto" (elementwise when at most ``max_elementwise`` elements are checked).
    Defaults: eps=1e-6, atol=1e-5, rtol=1e-3 in float64; eps=1e-3, atol=1e-3, rtol=1e-2 with
    ``allow_low_precision``.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs)
               if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; create inputs with "
                         "requires_grad=True")
    for i in checked:
        t = inputs[i]
        if t.dtype != np.float64 and not allow_low_precision:
            raise TypeError(
                f"gradcheck: input {i} has dtype {t.dtype}; finite differences need float64 "
                f"(pass allow_low_precision=True to check it anyway with loose tolerances)")
        values = to_numpy(t.data)
        if not np.all(np.isfinite(values)):
            bad = np.unravel_index(int(np.argmin(np.isfinite(values))), values.shape)
            bad = tuple(int(v) for v in bad)
            raise ValueError(f"gradcheck: input {i} has a non-finite value at index {bad}")
    low = allow_low_precision
    eps = eps if eps is not None else (1e-3 if low else 1e-6)
    atol = atol if atol is not None else (1e-3 if low else 1e-5)
    rtol = rtol if rtol is not None else (1e-2 if low else 1e-3)
    rng = np.random.default_rng(seed)
    before = [to_numpy(inputs[i].data).copy() for i in checked]

    _, outs = _objective(fn, inputs, [None] * 8)
    if grad_outputs is None:
        grad_outputs = [rng.standard_normal(o.shape) if o.dtype.kind == "f" else None
                        for o in outs]
    else:
        grad_outputs = [None if g is None else to_numpy(getattr(g, "data", g)).astype(
            np.float64) for g in grad_outputs]
    analytic = _analytic(fn, inputs, checked, grad_outputs)

    for k, i in enumerate(checked):
        if not np.array_equal(to_numpy(inputs[i].data), before[k]):
            raise GradcheckError(f"input {i} was modified in place by fn or its backward")
    if check_linearity:
        doubled = _analytic(fn, inputs, checked, grad_outputs, scale=2.0)
        for k, i in enumerate(checked):
            if not np.allclose(doubled[k], 2 * analytic[k], rtol=1e-10, atol=1e-12):
                raise GradcheckError(f"input {i}: backward is not linear in the upstream "
                                     f"gradient (backward(2g) != 2 backward(g))")

    n_total = sum(inputs[i].data.size for i in checked)
    if mode == "auto":
        mode = "elementwise" if n_total <= max_elementwise else "directional"
    try:
        if mode == "elementwise":
            _check_elementwise(fn, inputs, checked, grad_outputs, analytic, eps, atol, rtol)
        elif mode == "directional":
            _check_directional(fn, inputs, checked, grad_outputs, analytic, eps, atol, rtol,
                               rng, n_directions)
        else:
            raise ValueError(f"gradcheck: mode must be 'auto', 'elementwise' or 'directional', "
                             f"got {mode!r}")
    except GradcheckError:
        if not raise_exception:
            return False
        raise
    return True


def _perturbed(fn, inputs, i, flat_index, delta, grad_outputs):
    data = inputs[i].data
    view = data.reshape(-1)
    old = view[flat_index].item()
    view[flat_index] = old + delta
    try:
        value, _ = _objective(fn, inputs, grad_outputs)
    finally:
        view[flat_index] = old
    return value


def _check_elementwise(fn, inputs, checked, grad_outputs, analytic, eps, atol, rtol):
    for k, i in enumerate(checked):
        if not inputs[i].data.flags.c_contiguous:
            inputs[i].data = inputs[i].data.copy()
        numeric = np.zeros(inputs[i].data.size)
        for j in range(inputs[i].data.size):
            plus = _perturbed(fn, inputs, i, j, eps, grad_outputs)
            minus = _perturbed(fn, inputs, i, j, -eps, grad_outputs)
            numeric[j] = (plus - minus) / (2 * eps)
        a = analytic[k].reshape(-1)
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(excess > 0) or not np.all(np.isfinite(a)):
            worst = int(np.argmax(np.where(np.isfinite(a), excess, np.inf)))
            index = np.unravel_index(worst, inputs[i].shape)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {tuple(inputs[i].shape)}) at index "
                f"{tuple(int(v) for v in index)}: analytic {a[worst]:.10g} vs numerical "
                f"{numeric[worst]:.10g} (eps={eps}, atol={atol}, rtol={rtol}); "
                f"{int(np.sum(excess > 0))} of {a.size} elements differ. Is the input within a "
                f"few eps of a kink (relu/abs at 0, a tie in max)?")


def _check_directional(fn, inputs, checked, grad_outputs, analytic, eps, atol, rtol, rng,
                       n_directions):
    for d in range(n_directions):
        dirs = [rng.standard_normal(inputs[i].shape) for i in checked]
        norm = np.sqrt(sum(float((u * u).sum()) for u in dirs))
        dirs = [u / norm for u in dirs]
        values = []
        for sign in (1.0, -1.0):
            originals = []
            for u, i in zip(dirs, checked):
                originals.append(inputs[i].data.copy())
                xp = get_array_module(inputs[i].data)
                inputs[i].data += xp.asarray(sign * eps * u, dtype=inputs[i].dtype)
            try:
                values.append(_objective(fn, inputs, grad_outputs)[0])
            finally:
                for orig, i in zip(originals, checked):
                    inputs[i].data[...] = orig
        numeric = (values[0] - values[1]) / (2 * eps)
        a = sum(float((g * u).sum()) for g, u in zip(analytic, dirs))
        if not abs(a - numeric) <= atol + rtol * abs(numeric):
            small = [i for i in checked if inputs[i].data.size <= 4096]
            if len(small) == len(checked):  # small enough: find the worst element to report
                _check_elementwise(fn, inputs, checked, grad_outputs, analytic, eps, atol, rtol)
            raise GradcheckError(
                f"gradcheck failed along random direction {d} (inputs {checked}): analytic "
                f"directional derivative {a:.10g} vs numerical {numeric:.10g} (eps={eps}, "
                f"atol={atol}, rtol={rtol})")
