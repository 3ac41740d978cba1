"""einsum: Einstein summation, forward by xp.einsum, backward by einsum again.

    y[out] = sum over the letters not in ``out`` of  prod_k x_k[s_k]

The derivative with respect to operand k is the same product with x_k left out and the
upstream gradient put in its place:

    dx_k[s_k] = sum over the letters not in s_k of  g[out] * prod_{m != k} x_m[s_m]

which is one more einsum, "out,s_1,..(without s_k)..->s_k". Two cases need care:

- a letter that appears only in s_k (summed away in the forward, e.g. 'ij->i'): the gradient
  does not depend on it, so it is broadcast along that axis;
- a letter repeated within s_k (a diagonal, e.g. 'ii->i'): the gradient lands on that
  diagonal and is zero elsewhere.

Ellipsis ('...') stands for the same broadcast dims in every operand; it is rewritten into
unused letters first, and an operand whose ellipsis dim has size 1 gets the gradient summed
back to size 1.
"""
import string

from ..autograd import Function, records_graph
from ..backend import get_array_module
from .array_methods import as_dtype, sum_over


def _parse(equation, shapes):
    """(inputs, output): one subscript string per operand and the output's, ellipsis expanded
    into letters that the equation does not use."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} names {len(inputs)} operands, "
                         f"got {len(shapes)}")
    spare = [c for c in string.ascii_letters if c not in eq]
    n_ell = max([len(shape) - len(s.replace("...", "")) for s, shape in zip(inputs, shapes)
                 if "..." in s] or [0])
    ell = "".join(spare[:n_ell])
    expanded = []
    for s, shape in zip(inputs, shapes):
        if "..." in s:
            k = len(shape) - len(s.replace("...", ""))
            s = s.replace("...", ell[n_ell - k:] if k else "")
        if len(s) != len(shape) or not all(c in string.ascii_letters for c in s):
            raise ValueError(f"einsum: subscripts {s!r} do not match an operand of shape "
                             f"{tuple(shape)} in {equation!r}")
        expanded.append(s)
    if arrow:
        out = rhs.replace("...", ell)
    else:                       # implicit output: the letters used once, sorted; ellipsis first
        joined = "".join(expanded)
        out = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1
                                   and c not in ell))
    return expanded, out


def _letter_sizes(subs, shapes):
    sizes = {}
    for s, shape in zip(subs, shapes):
        for c, n in zip(s, shape):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    return sizes


class Einsum(Function):
    """y = einsum(equation, x_1, ..., x_n);   dx_k = einsum(out, others -> s_k) (see module)."""

    def forward(self, *xs, inputs, output):
        xp = get_array_module(*xs)
        self.inputs, self.output = inputs, output
        self.save_for_backward(*xs)
        spec = ",".join(inputs) + "->" + output
        return xp.asarray(xp.einsum(spec, *xs))

    def backward(self, g):
        xs = self.saved
        sizes = _letter_sizes(self.inputs + [self.output], [x.shape for x in xs] + [g.shape])
        return tuple(self._grad_of(k, g, xs, sizes) for k in range(len(xs)))

    def _grad_of(self, k, g, xs, sizes):
        xp = get_array_module(g)
        sub = self.inputs[k]
        others = [(s, x) for m, (s, x) in enumerate(zip(self.inputs, xs)) if m != k]
        available = set(self.output).union(*[set(s) for s, _ in others])
        letters = "".join(dict.fromkeys(sub))                 # unique letters of s_k, in order
        kept = "".join(c for c in letters if c in available)
        spec = ",".join([self.output] + [s for s, _ in others]) + "->" + kept
        grad = xp.einsum(spec, g, *[x for _, x in others])  # (the kept letters)
        # letters only in s_k: broadcast the gradient along them
        grad = grad.reshape([sizes[c] if c in kept else 1 for c in letters])
        grad = xp.broadcast_to(grad, tuple(sizes[c] for c in letters))
        if len(letters) < len(sub):                            # repeated letters: a diagonal
            grad = _onto_diagonal(grad, letters, sub, sizes)
        # ellipsis dims of size 1 in x_k that were broadcast against the other operands
        stretched = tuple(i for i, n in enumerate(xs[k].shape) if n == 1 and grad.shape[i] != 1)
        if stretched:
            grad = sum_over(grad, stretched, keepdims=True)
        return _contiguous(grad, xs[k].dtype)


def _onto_diagonal(grad, letters, sub, sizes):
    """dx[sub] = grad[letters] where the repeated letters of ``sub`` agree, 0 elsewhere: the
    adjoint of taking a diagonal ('ii->i'). Arrays: written into zeros in place. Tensors: one
    more einsum, with an identity matrix (a Kronecker delta) per repeat: 'i,ij->ij'."""
    xp = get_array_module(grad)
    if not records_graph(grad):
        dx = xp.zeros([sizes[c] for c in sub], dtype=grad.dtype)
        grids = xp.ix_(*[xp.arange(sizes[c]) for c in letters])
        dx[tuple(grids[letters.index(c)] for c in sub)] = grad
        return dx
    from ..tensor import Tensor
    spare = iter(c for c in string.ascii_letters if c not in sub)
    target, deltas = "", []
    for c in sub:
        if c in target:                                        # a repeat: a fresh letter
            fresh = next(spare)
            target, deltas = target + fresh, deltas + [c + fresh]
        else:
            target += c
    backend = get_array_module(grad.data)
    eyes = [Tensor._wrap(backend.eye(sizes[d[0]], dtype=grad.dtype)) for d in deltas]
    return xp.einsum(",".join([letters] + deltas) + "->" + target, grad, *eyes)


def _contiguous(grad, dtype):
    """grad as a C-contiguous array (a broadcast view is not) of the operand's dtype."""
    if records_graph(grad):
        return as_dtype(grad, dtype)
    return get_array_module(grad).asarray(grad, order="C").astype(dtype, copy=False)


def einsum(equation, *operands):
    """torch.einsum(equation, *operands) (operands may also be given as one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    inputs, output = _parse(equation, [tuple(x.shape) for x in operands])
    return Einsum.apply(*operands, inputs=inputs, output=output)
